"""The FastAPI application of ``apex serve``: routes, errors, the guard and the lifespan.

At start the store is opened (and migrated) and, unless told otherwise, every goal the store
holds as active is resumed; at the end, running goals are cancelled (they stay active and
resume at the next start), the shared model clients are closed and the store released.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from apex import __version__
from apex.server import completions, evidence_api, goals_api
from apex.server.config import ServerConfig
from apex.server.errors import install_handlers
from apex.server.goal_runner import GoalEvents, GoalRunner
from apex.server.guard import Door, GuardMiddleware
from apex.server.registry import Registry
from apex.server.state import ServerState, state_of
from apex.server.store import ServerStore
from apex.server.work import Workshop
from apex.ui import dashboard_router

DESCRIPTION = """An OpenAI-compatible endpoint over APEX's fusion cycle, and a goals API.

`model: "apex/<workflow>"` answers with a fusion cycle (a panel in parallel, critics, a blind
judge); `model: "provider:model"` is one call. Authenticate with `Authorization: Bearer KEY`
when the server has keys (`APEX_SERVER_KEYS`).
"""


DASHBOARD_PREFIX = "/ui"
"""Where the read-only dashboard is served (only by a server without keys)."""


def build_state(config: ServerConfig) -> ServerState:
    """The server's parts for ``config`` (raises on a bad workflow file or store URL)."""
    registry = Registry(config.workflows_dir)
    store = ServerStore(config.db)
    events = GoalEvents()
    return ServerState(
        config=config,
        registry=registry,
        store=store,
        workshop=Workshop(store, config.max_concurrent, config.deadline_s),
        events=events,
        runner=GoalRunner(store, events),
        door=Door(config.keys, config.max_body_bytes),
    )


def create_app(config: ServerConfig, state: ServerState | None = None) -> FastAPI:
    """The application for ``config`` (``state``: parts already built by :func:`build_state`)."""
    parts = state or build_state(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        parts.events.bind(asyncio.get_running_loop())
        if config.resume_goals:
            parts.runner.resume_unfinished()
        try:
            yield
        finally:
            parts.events.close()
            await parts.runner.aclose()
            await parts.registry.aclose()
            parts.store.close()

    app = FastAPI(title="APEX", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.apex = parts
    install_handlers(app)
    app.include_router(completions.router)
    app.include_router(goals_api.router)
    app.include_router(evidence_api.router)
    if not parts.door.auth:  # a browser sends no key: with keys, run `apex ui` beside the server
        app.include_router(dashboard_router(lambda: parts.store, prefix=DASHBOARD_PREFIX))
    app.add_middleware(GuardMiddleware, door=parts.door)

    @app.get("/health", tags=["server"], summary="Liveness and load")
    async def health(request: Request) -> dict[str, Any]:
        """Whether the server is serving, and what it is doing (no key needed)."""
        state = state_of(request)
        return {
            "status": "ok",
            "version": __version__,
            "requests_in_flight": state.door.in_flight,
            "cycles_in_flight": state.workshop.in_flight,
            "goals_running": len(state.runner.tasks),
            "workflows": len(state.registry.names()),
        }

    return app
