"""An OpenAI-compatible chat-completions server over real HTTP on loopback, scriptable per model.

For tests, benchmarks and demos::

    with TestServer() as server:
        server.script("m1", Reply("Paris", latency=1.0))
        server.script("m2", Fail(429, retry_after=1), Reply("Lyon"))
        # a workflow provider with base_url = server.base_url

Each model has a queue of behaviours consumed in order; once it is empty the model's default
(``server.default(model, ...)``) answers, else the server-wide ``default`` (an echo unless given).
A behaviour may also be a callable that receives the request body and returns a behaviour or a
string. Every request is recorded with its raw bytes, so tests can check exactly what was sent.

Use it where the wire matters (HTTP framing, other processes); in-process tests are faster with
:class:`~apex.testing.InProcessServer`, which has the same scripting API.
"""

from __future__ import annotations

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from apex.testing.behaviours import (
    NOT_JSON,
    Empty,
    Fail,
    Hang,
    Malformed,
    RecordedRequest,
    Refuse,
    Reply,
    Responder,
    Response,
    ScriptedModels,
    parse_body,
    respond,
)

__all__ = [
    "Empty",
    "Fail",
    "Hang",
    "Malformed",
    "RecordedRequest",
    "Refuse",
    "Reply",
    "Responder",
    "TestServer",
]

POLL_INTERVAL_S = 0.01
"""How often the serving thread checks for shutdown: ``stop()`` waits up to this long."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # header and body go out in two writes: no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        if response.events:  # streamed: the body ends when the connection closes
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(response.body)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
            self.wfile.write(response.body)
            for i, event in enumerate(response.events):
                if i:
                    time.sleep(response.event_delay)
                self.wfile.write(event)
                self.wfile.flush()

    def do_GET(self) -> None:
        """``/v1/models`` lists the scripted models."""
        self._send(Response(200, self.server.models.models_body()))

    def do_POST(self) -> None:
        """``/v1/chat/completions``: play the model's next behaviour."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        body = parse_body(raw)
        if body is None:
            self._send(NOT_JSON)
            return
        models = self.server.models
        record, behaviour = models.begin(raw, body)
        try:
            response = respond(record.model, body, behaviour)
            time.sleep(response.delay)
            self._send(response)
        finally:
            models.end(record)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a batch of 8-model fusions opens dozens of connections at once
    models: ScriptedModels


class TestServer(ScriptedModels):
    """A real HTTP server on 127.0.0.1 speaking the chat-completions API; see module docs."""

    __test__ = False  # not a pytest test class

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, default: Any = None) -> None:
        super().__init__(default)
        self._server = _Server((host, port), _Handler)
        self._server.models = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """Base URL for a provider, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Self:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_INTERVAL_S,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
