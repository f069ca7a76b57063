"""What a scripted model does, and the chat-completions response it produces.

Shared by both test doubles, :class:`~apex.testing.TestServer` (real HTTP on loopback) and
:class:`~apex.testing.InProcessServer` (an in-process httpx transport): the behaviour types, the
per-model script queues and defaults, the request log, and the bytes of every response. Only how
a server waits (``time.sleep`` in a thread, ``asyncio.sleep`` in the event loop) and how it sends
differ between the two.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self


@dataclass(frozen=True)
class Reply:
    """Answer with ``text`` after ``latency`` seconds."""

    text: str
    latency: float = 0.0
    prompt_tokens: int = 10
    completion_tokens: int = 5
    cost: float | None = None
    """Reported ``usage.cost`` (as OpenRouter does), or None to report no cost."""
    finish_reason: str = "stop"
    """The choice's finish reason (``length``: cut off at ``max_tokens``)."""
    token_delay: float = 0.0
    """Streamed (a request with ``stream: true``): seconds between pieces of the text."""


@dataclass(frozen=True)
class Fail:
    """Answer with an HTTP error status (429 may carry Retry-After)."""

    status: int
    retry_after: float | None = None
    latency: float = 0.0


@dataclass(frozen=True)
class Hang:
    """Answer only after ``seconds`` (longer than the client's timeout)."""

    seconds: float = 30.0


@dataclass(frozen=True)
class Malformed:
    """Answer 200 with a body that is not a chat completion."""

    body: str = '{"choices": [ {"message": '


@dataclass(frozen=True)
class Empty:
    """Answer 200 with empty content."""


@dataclass(frozen=True)
class Refuse:
    """Answer 200 with a refusal."""

    reason: str = "I can't help with that."


Behaviour = Reply | Fail | Hang | Malformed | Empty | Refuse
"""A scripted answer; a script may also hold answer text or a :data:`Responder`."""

Responder = Callable[[dict[str, Any]], Any]
"""A callable behaviour: gets the request body, returns a behaviour or the answer text."""


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    model: str
    raw: bytes
    body: dict[str, Any]
    started: float
    finished: float = 0.0


@dataclass(frozen=True)
class Response:
    """What a server sends for one request, and how long it waits first."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    events: tuple[bytes, ...] = ()
    """A streamed answer: its server-sent events, sent in turn instead of ``body``."""
    event_delay: float = 0.0
    """Seconds between two events."""

    @property
    def content_type(self) -> str:
        """``text/event-stream`` for a streamed answer, else JSON."""
        return "text/event-stream" if self.events else "application/json"


NOT_JSON = Response(400, b'{"error": {"message": "body is not JSON"}}')


def completion(model: str, text: str | None, reply: Reply | None, refusal: str | None) -> bytes:
    """The body of a chat completion answering ``text`` (or refusing), with ``reply``'s usage."""
    usage: dict[str, Any] = {}
    if reply is not None:
        usage = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }
        if reply.cost is not None:
            usage["cost"] = reply.cost
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if refusal is not None:
        message["refusal"] = refusal
    payload = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": reply.finish_reason if reply is not None else "stop",
            }
        ],
        "usage": usage,
    }
    return json.dumps(payload).encode()


STREAM_PIECE_CHARS = 8
"""About how many characters each streamed piece of a scripted answer carries."""


def stream_events(model: str, reply: Reply, include_usage: bool) -> tuple[bytes, ...]:
    """The server-sent events of ``reply`` streamed: its text in pieces, the finish reason,
    the usage (when asked for), then ``[DONE]``."""

    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": model}
        return b"data: " + json.dumps(chunk | {"choices": choices} | extra).encode() + b"\n\n"

    text = reply.text
    pieces = [text[i : i + STREAM_PIECE_CHARS] for i in range(0, len(text), STREAM_PIECE_CHARS)]
    out = [event([{"index": 0, "delta": {"role": "assistant", "content": ""}}])]
    out += [event([{"index": 0, "delta": {"content": p}, "finish_reason": None}]) for p in pieces]
    out.append(event([{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]))
    if include_usage:
        usage = json.loads(completion(model, text, reply, None))["usage"]
        out.append(event([], usage=usage))
    return (*out, b"data: [DONE]\n\n")


def echo(body: dict[str, Any]) -> Reply:
    """The default behaviour: repeat the last message, prefixed by the model name."""
    messages = body.get("messages") or [{}]
    return Reply(f"{body.get('model')} says: {str(messages[-1].get('content', ''))[:200]}")


def respond(model: str, body: dict[str, Any], behaviour: Any) -> Response:
    """Play ``behaviour`` (a behaviour, answer text, or a :data:`Responder`) for one request."""
    if callable(behaviour) and not isinstance(behaviour, Behaviour):
        behaviour = behaviour(body)
    if isinstance(behaviour, str):
        behaviour = Reply(behaviour)
    match behaviour:
        case Reply(latency=latency) if body.get("stream") is True:
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = stream_events(model, behaviour, usage)
            pace = behaviour.token_delay
            return Response(200, b"", delay=latency, events=events, event_delay=pace)
        case Reply(latency=latency):
            return Response(200, completion(model, behaviour.text, behaviour, None), delay=latency)
        case Fail(status=status, retry_after=retry_after, latency=latency):
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            error = {"error": {"message": f"scripted {status}", "code": status}}
            return Response(status, json.dumps(error).encode(), headers, delay=latency)
        case Hang(seconds=seconds):
            return Response(200, completion(model, "too late", None, None), delay=seconds)
        case Malformed(body=text):
            return Response(200, text.encode())
        case Empty():
            return Response(200, completion(model, "", None, None))
        case Refuse(reason=reason):
            return Response(200, completion(model, None, None, reason))
        case _:
            return Response(500, b'{"error": {"message": "unknown scripted behaviour"}}')


class ScriptedModels:
    """Per-model script queues and defaults, the request log and concurrency counts.

    The scripting API both test doubles share (type a helper with it to take either).
    ``default`` answers for every model that has neither a queued behaviour nor a default of
    its own (None: echo the last message).
    """

    def __init__(self, default: Any = None) -> None:
        self._queues: dict[str, deque[Any]] = defaultdict(deque)
        self._defaults: dict[str, Any] = {}
        self._fallback: Any = default if default is not None else echo
        self._requests: list[RecordedRequest] = []
        self._in_flight: dict[str, int] = defaultdict(int)
        self._max_in_flight: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """Base URL for a provider's ``base_url`` (each server says where it answers)."""
        raise NotImplementedError

    def script(self, model: str, *behaviours: Any) -> Self:
        """Queue behaviours for ``model``, played one per request."""
        with self._lock:
            self._queues[model].extend(behaviours)
        return self

    def default(self, model: str, behaviour: Any) -> Self:
        """What ``model`` does once its queue is empty (a behaviour, text, or a callable)."""
        with self._lock:
            self._defaults[model] = behaviour
        return self

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        """Requests received for ``model``."""
        return [r for r in self.requests if r.model == model]

    def max_in_flight(self, model: str) -> int:
        """The most concurrent requests ``model`` saw at once."""
        with self._lock:
            return self._max_in_flight[model]

    def models_body(self) -> bytes:
        """The ``GET /models`` answer: every scripted model."""
        with self._lock:
            names = sorted(set(self._queues) | set(self._defaults))
        return json.dumps({"data": [{"id": n, "object": "model"} for n in names]}).encode()

    def begin(self, raw: bytes, body: dict[str, Any]) -> tuple[RecordedRequest, Any]:
        """Record a chat request and take its behaviour; pair with :meth:`end`."""
        model = str(body.get("model", ""))
        record = RecordedRequest(model=model, raw=raw, body=body, started=time.monotonic())
        with self._lock:
            self._requests.append(record)
            queue = self._queues.get(model)
            behaviour = queue.popleft() if queue else self._defaults.get(model, self._fallback)
            self._in_flight[model] += 1
            self._max_in_flight[model] = max(self._max_in_flight[model], self._in_flight[model])
        return record, behaviour

    def end(self, record: RecordedRequest) -> None:
        """The request is answered (or abandoned): stamp it and leave the in-flight count."""
        with self._lock:
            self._in_flight[record.model] -= 1
        record.finished = time.monotonic()


def parse_body(raw: bytes) -> dict[str, Any] | None:
    """The request's JSON object, or None when the body is not JSON."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
