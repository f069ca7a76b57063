"""An OpenAI-compatible chat-completions server over real HTTP on loopback, scriptable per model.

For tests, benchmarks and demos::

    with TestServer() as server:
        server.script("m1", Reply("Paris", latency=1.0))
        server.script("m2", Fail(429, retry_after=1), Reply("Lyon"))
        # a workflow provider with base_url = server.base_url

Each model has a queue of behaviours consumed in order; once it is empty the model's default
(``server.default(model, ...)``) answers, else an echo. A behaviour may also be a callable that
receives the request body and returns a behaviour or a string. Every request is recorded with its
raw bytes, so tests can check exactly what was sent.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """Answer with ``text`` after ``latency`` seconds."""

    text: str
    latency: float = 0.0
    prompt_tokens: int = 10
    completion_tokens: int = 5
    cost: float | None = None
    """Reported ``usage.cost`` (as OpenRouter does), or None to report no cost."""


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


@dataclass
class _State:
    queues: dict[str, deque[Any]] = field(default_factory=lambda: defaultdict(deque))
    defaults: dict[str, Any] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)


def _completion(model: str, text: str | None, reply: Reply | None, refusal: str | None) -> bytes:
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
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": usage,
    }
    return json.dumps(payload).encode()


def _echo(body: dict[str, Any]) -> Reply:
    messages = body.get("messages") or [{}]
    return Reply(f"{body.get('model')} says: {str(messages[-1].get('content', ''))[:200]}")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # header and body go out in two writes: no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
            self.wfile.write(body)

    def do_GET(self) -> None:
        """``/v1/models`` lists the scripted models."""
        state = self.server.state
        with state.lock:
            names = sorted(set(state.queues) | set(state.defaults))
        data = {"data": [{"id": n, "object": "model"} for n in names]}
        self._send(200, json.dumps(data).encode())

    def do_POST(self) -> None:
        """``/v1/chat/completions``: play the model's next behaviour."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, b'{"error": {"message": "body is not JSON"}}')
            return
        model = str(body.get("model", ""))
        state = self.server.state
        record = RecordedRequest(model=model, raw=raw, body=body, started=time.monotonic())
        with state.lock:
            state.requests.append(record)
            queue = state.queues.get(model)
            behaviour = queue.popleft() if queue else state.defaults.get(model, _echo)
            state.in_flight[model] += 1
            state.max_in_flight[model] = max(state.max_in_flight[model], state.in_flight[model])
        try:
            self._play(model, body, behaviour)
        finally:
            with state.lock:
                state.in_flight[model] -= 1
            record.finished = time.monotonic()

    def _play(self, model: str, body: dict[str, Any], behaviour: Any) -> None:
        if callable(behaviour) and not isinstance(
            behaviour, Reply | Fail | Hang | Malformed | Empty | Refuse
        ):
            behaviour = behaviour(body)
        if isinstance(behaviour, str):
            behaviour = Reply(behaviour)
        match behaviour:
            case Reply(latency=latency):
                time.sleep(latency)
                self._send(200, _completion(model, behaviour.text, behaviour, None))
            case Fail(status=status, retry_after=retry_after, latency=latency):
                time.sleep(latency)
                headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
                error = {"error": {"message": f"scripted {status}", "code": status}}
                self._send(status, json.dumps(error).encode(), headers)
            case Hang(seconds=seconds):
                time.sleep(seconds)
                self._send(200, _completion(model, "too late", None, None))
            case Malformed(body=text):
                self._send(200, text.encode())
            case Empty():
                self._send(200, _completion(model, "", None, None))
            case Refuse(reason=reason):
                self._send(200, _completion(model, None, None, reason))
            case _:
                self._send(500, b'{"error": {"message": "unknown scripted behaviour"}}')


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class TestServer:
    """A real HTTP server on 127.0.0.1 speaking the chat-completions API; see module docs."""

    __test__ = False  # not a pytest test class

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.state = _State()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """Base URL for a provider, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> TestServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> TestServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def script(self, model: str, *behaviours: Any) -> TestServer:
        """Queue behaviours for ``model``, played one per request."""
        with self._server.state.lock:
            self._server.state.queues[model].extend(behaviours)
        return self

    def default(self, model: str, behaviour: Any) -> TestServer:
        """What ``model`` does once its queue is empty (a behaviour, text, or a callable)."""
        with self._server.state.lock:
            self._server.state.defaults[model] = behaviour
        return self

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order."""
        with self._server.state.lock:
            return list(self._server.state.requests)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        """Requests received for ``model``."""
        return [r for r in self.requests if r.model == model]

    def max_in_flight(self, model: str) -> int:
        """The most concurrent requests ``model`` saw at once."""
        with self._server.state.lock:
            return self._server.state.max_in_flight[model]
