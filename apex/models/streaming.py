"""Streamed chat completions: server-sent events read back into one completion.

A call made with a :data:`TextSink` asks the provider to stream (``stream: true`` with
``stream_options.include_usage``), reports the answer text to the sink as it arrives, and ends
in the same JSON a non-streamed call returns, so the client parses both alike. A provider that
ignores ``stream`` and answers with one JSON body is read as it is (the sink hears the whole
text once). An ``error`` event in the stream, or a stream that ends before its last chunk, is a
:class:`StreamFailure`; a connection that breaks mid-stream raises httpx's own error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from apex.models.types import FailureKind
from apex.redact import redact_known

TextSink = Callable[[str], None]
"""Receives the answer text so far (the whole of it each time, keys masked) while a call
streams; a retried call starts again from its first word."""

ERROR_CHARS = 200
"""How much of a provider's in-stream error message a failure keeps."""


class StreamFailure(Exception):
    """The stream itself said the call failed, or ended before its last chunk."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind


def stream_body(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` asking for a stream that ends with the usage of the call."""
    return body | {"stream": True, "stream_options": {"include_usage": True}}


async def read_completion(response: httpx.Response, sink: TextSink) -> Any:
    """The completion ``response`` carries, as the JSON of a non-streamed call."""
    if "text/event-stream" not in response.headers.get("content-type", ""):
        try:
            data = json.loads(await response.aread())  # not streamed: one body, as usual
        except ValueError:
            raise StreamFailure("malformed_response", "not a chat completion (not JSON)") from None
        content = _content(data)
        if content:
            sink(redact_known(content))
        return data
    text, refusal, finish, usage, model, ended = "", "", None, None, None, False
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # a comment (keep-alive), an event name, a blank separator
        payload = line[5:].strip()
        if payload == "[DONE]":
            ended = True
            break
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise StreamFailure("malformed_response", "a streamed chunk is not JSON") from None
        if not isinstance(chunk, dict):
            raise StreamFailure("malformed_response", "a streamed chunk is not an object")
        if chunk.get("error") is not None:
            raise StreamFailure("http_error", f"the stream reported: {_message(chunk['error'])}")
        model = chunk.get("model") if isinstance(chunk.get("model"), str) else model
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            piece = delta.get("content")
            if isinstance(piece, str) and piece:
                text += piece
                sink(redact_known(text.strip()))
            if isinstance(delta.get("refusal"), str):
                refusal += delta["refusal"]
            finish = choice.get("finish_reason") or finish
    if not ended and finish is None:
        raise StreamFailure("malformed_response", "the stream ended before its last chunk")
    message = {"role": "assistant", "content": text, "refusal": refusal or None}
    return {
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage or {},
    }


def _content(data: Any) -> str | None:
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content.strip() if isinstance(content, str) else None


def _message(error: Any) -> str:
    text = error.get("message") if isinstance(error, dict) else error
    return str(text)[:ERROR_CHARS]
