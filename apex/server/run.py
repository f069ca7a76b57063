"""Running the app under uvicorn, with a graceful shutdown.

On SIGTERM (or Ctrl-C) the server first *drains*: it keeps its socket open, answers every new
request with 503 and ``Retry-After``, and waits (up to ``grace_s``) for the requests in flight to
finish; then goal event streams are closed and uvicorn stops. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import Callable
from types import FrameType

import uvicorn

from apex.logging import get_logger
from apex.server.app import build_state, create_app
from apex.server.config import ServerConfig
from apex.server.state import ServerState

log = get_logger("apex.server")
UVICORN_GRACE_S = 5
"""After draining, how long uvicorn waits for connections to close before cancelling them."""
YOUNG_GC_THRESHOLD = 20_000
"""Allocations between the cycle collector's young-generation passes in the server (Python's
default is 700)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it every response waits 40 ms for a delayed ACK (headers and body are two writes).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first exit signal drains before stopping."""

    def __init__(
        self, config: uvicorn.Config, state: ServerState, on_ready: Callable[[], None]
    ) -> None:
        super().__init__(config)
        self.state = state
        self.on_ready = on_ready
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start serving, then say so."""
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self.on_ready()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: drain; any later one: uvicorn's own (stop, then force)."""
        if self.state.door.draining or self._loop is None:
            super().handle_exit(sig, frame)
            return
        self.state.door.draining = True
        self._loop.call_soon_threadsafe(self._begin_drain)

    def _begin_drain(self) -> None:
        self._drain = asyncio.get_running_loop().create_task(self._drained())

    async def _drained(self) -> None:
        in_flight = self.state.door.in_flight
        log.warning("draining", requests_in_flight=in_flight, grace_s=self.state.config.grace_s)
        if not await self.state.door.wait_idle(self.state.config.grace_s):
            log.warning("grace_expired", requests_in_flight=self.state.door.in_flight)
        self.state.events.close()
        self.should_exit = True


def serve(
    config: ServerConfig,
    sock: socket.socket,
    *,
    log_level: str = "warning",
    access_log: bool = False,
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    """Serve ``config`` on the bound ``sock`` until stopped (blocking)."""
    state = build_state(config)
    app = create_app(config, state)
    uv_config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=UVICORN_GRACE_S,
        server_header=False,
    )
    # What exists now (modules, workflows, the app: ~200k objects) lives as long as the server:
    # kept out of the cycle collector's full passes (64 cycles at once in one process: ~40 ms of
    # collection per round instead of 55-210 ms)
    gc.freeze()
    # and the young objects collected every 20,000 allocations instead of 700: the cycles in flight
    # keep thousands alive, so each small pass used to walk them again (64 cycles at once: 2.149
    # to 2.157 s against 2.185 to 2.196 s, benchmarks/serve.py)
    gc.set_threshold(YOUNG_GC_THRESHOLD)
    DrainingServer(uv_config, state, on_ready).run(sockets=[sock])
