"""Answers on the wire: a ``chat.completion``, or a ``text/event-stream`` of chunks.

While the work runs, the stream sends SSE comments (``: keep-alive``) every ``keepalive_s`` so
proxies keep the connection open. The answer is sent once synthesis has finished, cut into
chunks: the model client has no token streaming, so the judge's answer is not streamed as it is
generated. A stream ends with ``data: [DONE]``; with ``stream_options.include_usage`` a last
chunk (no choices) carries the usage of every call. An error after the first byte is one
``data: {"error": ...}`` event, then the stream closes.

A response is committed (200 and its first byte) only when the work has finished or
``keepalive_s`` has passed, so a cycle that fails fast still gets its real status.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from apex.errors import ApexError
from apex.server.errors import as_problem, problem, problem_body
from apex.server.work import Answer, Work

KEEPALIVE = b": keep-alive\n\n"
DONE = b"data: [DONE]\n\n"
CHUNK_CHARS = 24
"""About how many characters each streamed content chunk carries."""
RUN_ID_HEADER = "X-Apex-Run-Id"
"""The response header naming the run (sent before any byte of a stream)."""
_PIECES = re.compile(r"\s*\S+\s*|\s+")


async def _disconnected(request: Request) -> None:
    """Return once the client has gone (the body is read: only a disconnect can come)."""
    try:
        while (await request.receive())["type"] != "http.disconnect":
            pass
    except Exception:  # a broken connection is a client that has gone
        return


async def wait_for(
    work: Work, request: Request, timeout_s: float | None
) -> Literal["done", "waiting", "gone"]:
    """Wait until the work ends (``done``), ``timeout_s`` passes (``waiting``), or the client
    leaves (``gone``: the work is cancelled)."""
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait(
            {work.task, watcher}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
    except asyncio.CancelledError:
        work.cancel()
        raise
    finally:
        watcher.cancel()
    if work.task in done:
        return "done"
    if watcher in done:
        work.cancel()
        return "gone"
    return "waiting"


def _failure(task: asyncio.Task[Answer]) -> HTTPException | None:
    """The finished task's error as an HTTP error (None when it answered)."""
    error = task.exception()
    if error is None:
        return None
    if isinstance(error, HTTPException):
        return error
    if isinstance(error, ApexError):
        return as_problem(error)
    return problem(500, f"internal error ({type(error).__name__})", "internal_error")


def completion(answer: Answer, completion_id: str, created: int) -> dict[str, Any]:
    """The ``chat.completion`` body of an answer."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": answer.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": answer.usage,
        "apex": answer.apex,
    }


def pieces(text: str, size: int = CHUNK_CHARS) -> Iterator[str]:
    """``text`` in consecutive pieces of about ``size`` characters, cut at word ends."""
    current = ""
    for word in _PIECES.findall(text):
        current += word
        if len(current) >= size:
            yield current
            current = ""
    if current:
        yield current


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def chunks(answer: Answer, completion_id: str, created: int, usage: bool) -> Iterator[bytes]:
    """The SSE events of an answer: role, content pieces, finish (with ``apex``), usage."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": answer.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if usage:
            body["usage"] = None
        return _event(body | extra)

    yield chunk({"role": "assistant", "content": ""})
    for piece in pieces(answer.text):
        yield chunk({"content": piece})
    yield chunk({}, "stop", apex=answer.apex)
    if usage:
        yield _event(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": answer.model,
                "choices": [],
                "usage": answer.usage,
            }
        )
    yield DONE


async def _stream(
    work: Work, completion_id: str, created: int, usage: bool, keepalive_s: float
) -> AsyncIterator[bytes]:
    try:
        while not work.task.done():
            yield KEEPALIVE
            await asyncio.wait({work.task}, timeout=keepalive_s)
        failure = _failure(work.task)
        if failure is not None:
            yield _event(problem_body(failure))
            return
        for event in chunks(work.task.result(), completion_id, created, usage):
            yield event
    finally:
        if not work.task.done():  # the client left (or the server stops): stop the work
            work.cancel()


async def respond(
    work: Work, request: Request, *, stream: bool, usage: bool, keepalive_s: float
) -> Response:
    """Await the work for ``request`` and answer it, as JSON or as an event stream."""
    completion_id = f"chatcmpl-{work.run_id}"
    created = int(time.time())
    headers = {RUN_ID_HEADER: work.run_id}
    waited = await wait_for(work, request, keepalive_s if stream else None)
    if waited == "gone":
        return Response(status_code=499)  # nobody is listening; the work was cancelled
    failure = _failure(work.task) if waited == "done" else None
    if failure is not None:
        raise failure
    if not stream:
        return JSONResponse(completion(work.task.result(), completion_id, created), headers=headers)
    headers |= {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _stream(work, completion_id, created, usage, keepalive_s),
        media_type="text/event-stream",
        headers=headers,
    )
