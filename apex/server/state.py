"""The server's parts, built once per app and reached from a request with :func:`state_of`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from apex.server.config import ServerConfig
from apex.server.goal_runner import GoalEvents, GoalRunner
from apex.server.guard import Door
from apex.server.registry import Registry
from apex.server.work import Workshop
from apex.store import EvidenceStore


@dataclass
class ServerState:
    """Everything a route may use."""

    config: ServerConfig
    """The configuration."""
    registry: Registry
    """Served workflows and shared model clients."""
    store: EvidenceStore
    """The evidence store (runs, evidence, goals, checkpoints)."""
    workshop: Workshop
    """Cycles and calls in flight."""
    events: GoalEvents
    """Goal events for SSE subscribers."""
    runner: GoalRunner
    """Goals running in this process."""
    door: Door
    """Auth, limits and the in-flight count of the guard middleware."""


def state_of(request: Request) -> ServerState:
    """The state of the app serving ``request``."""
    state = request.app.state.apex
    assert isinstance(state, ServerState)
    return state
