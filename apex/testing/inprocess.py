"""The test server without the server: chat completions answered in the event loop.

:class:`InProcessServer` has :class:`~apex.testing.TestServer`'s scripting API (``script``,
``default``, ``requests``, ``requests_for``, ``max_in_flight``, ``base_url``), but it is an
``httpx.AsyncBaseTransport`` registered for a host of its own, ``apex-inproc-<hex>``. Every
provider whose ``base_url`` is ``server.base_url`` is served by it, so the whole client path
(request body, concurrency limits, retries and Retry-After, timeouts, parsing, structured
output) runs as over HTTP, with no socket and no thread::

    with InProcessServer() as server:
        server.default("m1", Reply("Paris", latency=0.5))  # asyncio.sleep: parallel calls overlap
        server.script("m2", Fail(429, retry_after=0.1), Reply("Lyon"))
        server.default("judge", roles.judge("Paris"))
        result = await fuse("Capital of France?", workflow=parse_workflow(
            workflow_toml(server.base_url, ("m1", "m2")), "lab.toml"))
        assert server.requests_for("m1")[0].body["messages"]

:class:`FunctionModel` is the pydantic-ai style shorthand: every model answers with one Python
function of the request body (``FunctionModel(fn)`` is ``InProcessServer(default=fn)``).

A request is recorded exactly as the TestServer records it: the raw bytes the client encoded,
the parsed body, and when it started and finished. Latencies and ``Hang`` are
``asyncio.sleep``, so a client timeout cancels them (the request's ``finished`` is then the
moment it was abandoned). Keep the TestServer for what needs a real wire: HTTP framing, other
processes, servers outside Python.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any, Self

import httpx

from apex.models.providers import register_transport
from apex.testing.behaviours import (
    NOT_JSON,
    Responder,
    Response,
    ScriptedModels,
    parse_body,
    respond,
)

HOST_PREFIX = "apex-inproc-"


class _Events(httpx.AsyncByteStream):
    """A streamed answer's events, ``event_delay`` apart (``asyncio.sleep``); ``done`` runs once
    when the client has read them all or closed the response."""

    def __init__(self, response: Response, done: Callable[[], None]) -> None:
        self._response = response
        self._done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i, event in enumerate(self._response.events):
            if i:
                await asyncio.sleep(self._response.event_delay)
            yield event
        await self.aclose()

    async def aclose(self) -> None:
        """The request has ended (``done``, once)."""
        done, self._done = self._done, None
        if done is not None:
            done()


def _to_httpx(response: Response, done: Callable[[], None] = lambda: None) -> httpx.Response:
    """The response; ``done`` runs when it has been sent (a stream: once it has been read)."""
    headers = {"Content-Type": response.content_type} | response.headers
    if response.events:
        return httpx.Response(response.status, stream=_Events(response, done), headers=headers)
    done()
    return httpx.Response(response.status, content=response.body, headers=headers)


class InProcessTransport(httpx.AsyncBaseTransport):
    """Plays an :class:`InProcessServer`'s scripts for one httpx client (or several)."""

    def __init__(self, server: InProcessServer) -> None:
        self._server = server

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """``GET`` lists the scripted models, ``POST`` plays the model's next behaviour."""
        server = self._server
        if not server.running:
            raise httpx.ConnectError(f"{server.host} is not serving", request=request)
        raw = await request.aread()
        if request.method == "GET":
            return _to_httpx(Response(200, server.models_body()))
        if request.method != "POST":
            return _to_httpx(Response(501, b'{"error": {"message": "unsupported method"}}'))
        body = parse_body(raw)
        if body is None:
            return _to_httpx(NOT_JSON)
        record, behaviour = server.begin(raw, body)
        try:
            response = respond(record.model, body, behaviour)
            await asyncio.sleep(response.delay)
        except BaseException:  # cancelled while it waited (a client timeout)
            server.end(record)
            raise
        return _to_httpx(response, lambda: server.end(record))


class InProcessServer(ScriptedModels):
    """Scripted chat-completions models served in-process; see module docs.

    ``default`` answers for every model with no script and no default of its own (a behaviour,
    answer text, or a callable of the request body; None: echo). ``host`` defaults to a fresh
    ``apex-inproc-<hex>``. The transport is registered while the server runs (``with`` block, or
    :meth:`start` / :meth:`stop`); afterwards a request to it fails to connect, and a new
    client resolving ``base_url`` no longer finds it.
    """

    def __init__(self, *, default: Any = None, host: str | None = None) -> None:
        super().__init__(default)
        self.host = host or f"{HOST_PREFIX}{secrets.token_hex(6)}"
        """The host name the transport is registered under."""
        self.transport = InProcessTransport(self)
        """The httpx transport; also usable directly: ``httpx.AsyncClient(transport=...)``."""
        self._running = False

    @property
    def running(self) -> bool:
        """Whether the transport is registered and answering."""
        return self._running

    @property
    def base_url(self) -> str:
        """Base URL for a provider, e.g. ``http://apex-inproc-1a2b3c4d5e6f/v1``."""
        return f"http://{self.host}/v1"

    def start(self) -> Self:
        """Register the transport for :attr:`host`."""
        register_transport(self.host, self.transport)
        self._running = True
        return self

    def stop(self) -> None:
        """Unregister the transport; requests still reaching it fail to connect."""
        self._running = False
        register_transport(self.host, None)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class FunctionModel(InProcessServer):
    """Every model answers with ``fn(body)``: answer text or a behaviour (pydantic-ai style).

    ``body`` is the chat-completions request as sent (``body["model"]``, ``body["messages"]``,
    ``body.get("response_format")``...). Shorthand for ``InProcessServer(default=fn)``; models
    may still be scripted one by one on top of it.
    """

    def __init__(self, fn: Responder, *, host: str | None = None) -> None:
        super().__init__(default=fn, host=host)
