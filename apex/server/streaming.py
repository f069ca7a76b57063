"""Answers on the wire: a ``chat.completion``, or a ``text/event-stream`` of chunks.

While the work runs, the stream sends SSE comments (``: keep-alive``) every ``keepalive_s`` so
proxies keep the connection open. The judge's answer is streamed as the judge writes it, where
its provider streams (the ``final_answer`` of its verdict, read as it arrives: see
:mod:`apex.graph.answer_stream`), and so is a pass-through call's; the rest of the answer (all
of it, in select or vote synthesis) is sent in chunks once the cycle has finished. Should the
final answer not continue what was streamed (the streaming judge's verdict failed its checks
and a retry answered), the stream ends with an ``answer_withdrawn`` error event. A stream ends
with ``data: [DONE]``; with ``stream_options.include_usage`` a last chunk (no choices) carries
the usage of every call. An error after the first byte is one ``data: {"error": ...}`` event,
then the stream closes.

A response is committed (200 and its first byte) only when the work has finished, its answer
has begun or ``keepalive_s`` has passed, so a cycle that fails fast still gets its real status.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
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
    """Wait until the work ends (``done``), its answer begins or ``timeout_s`` passes
    (``waiting``), or the client leaves (``gone``: the work is cancelled)."""
    watcher = asyncio.ensure_future(_disconnected(request))
    written = asyncio.ensure_future(work.draft.changed.wait())
    try:
        done, _ = await asyncio.wait(
            {work.task, watcher, written}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
    except asyncio.CancelledError:
        work.cancel()
        raise
    finally:
        watcher.cancel()
        written.cancel()
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


@dataclass(frozen=True)
class Chunks:
    """The ``chat.completion.chunk`` events of one response."""

    completion_id: str
    created: int
    model: str
    usage: bool
    """Whether the request asked for the usage chunk (``stream_options.include_usage``)."""

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        """One chunk with ``delta`` (and the finish reason, and ``extra`` fields)."""
        body: dict[str, Any] = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if self.usage:
            body["usage"] = None
        return _event(body | extra)

    def opening(self) -> bytes:
        """The first chunk: the assistant's role."""
        return self.chunk({"role": "assistant", "content": ""})

    def ending(self, answer: Answer, sent: str = "") -> Iterator[bytes]:
        """The rest of ``answer`` after the ``sent`` part, finish (with ``apex``), usage, done."""
        for piece in pieces(answer.text[len(sent) :]):
            yield self.chunk({"content": piece})
        yield self.chunk({}, "stop", apex=answer.apex)
        if self.usage:
            yield _event(
                {
                    "id": self.completion_id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": answer.usage,
                }
            )
        yield DONE


def _withdrawn(run_id: str) -> dict[str, Any]:
    message = (
        f"run {run_id}: the answer streamed so far was withdrawn (the attempt that was "
        "streaming failed after it began, and another attempt answered); its answer is in the run"
    )
    return {"error": {"message": message, "type": "answer_withdrawn", "param": None, "code": None}}


async def _stream(work: Work, events: Chunks, keepalive_s: float) -> AsyncIterator[bytes]:
    sent = ""
    try:
        while not work.task.done():
            draft = work.draft.text
            work.draft.changed.clear()
            if len(draft) > len(sent) and draft.startswith(sent):
                if not sent:
                    yield events.opening()
                for piece in pieces(draft[len(sent) :]):
                    yield events.chunk({"content": piece})
                sent = draft
            else:
                yield KEEPALIVE
            changed = asyncio.ensure_future(work.draft.changed.wait())
            try:
                await asyncio.wait(
                    {work.task, changed}, timeout=keepalive_s, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                changed.cancel()
        failure = _failure(work.task)
        if failure is not None:
            yield _event(problem_body(failure))
            return
        answer = work.task.result()
        if not answer.text.startswith(sent):
            yield _event(_withdrawn(work.run_id))
            return
        if not sent:
            yield events.opening()
        for event in events.ending(answer, sent):
            yield event
    finally:
        if not work.task.done():  # the client left (or the server stops): stop the work
            work.cancel()


async def respond(
    work: Work, request: Request, *, model: str, stream: bool, usage: bool, keepalive_s: float
) -> Response:
    """Await the work for ``request`` and answer it, as JSON or as an event stream.

    A stream begins as soon as the answer does (or after ``keepalive_s``), and sends the
    answer as it is written when it can (the judge's, or a pass-through call's, from a
    provider that streams); the rest, or all of it, once the work has finished.
    """
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
    events = Chunks(completion_id, created, model, usage)
    return StreamingResponse(
        _stream(work, events, keepalive_s),
        media_type="text/event-stream",
        headers=headers,
    )
