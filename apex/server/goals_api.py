"""The goals API: start, list, inspect, pause, resume, cancel, and follow a goal over SSE.

A goal is created in the store and handed to :meth:`GoalRunner.dispatch`. Pause and cancel
take effect at the next cycle boundary (the cycle in flight finishes and is recorded), as with
``apex goal pause | cancel``. ``GET /v1/goals/{id}/events`` sends a ``status`` event, then the
loop's events (``cycle_started``, ``candidate``, ``cycle_finished``, ``state``) and keep-alive
comments; it stays open across pause and resume and closes once the goal is finished.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from apex.errors import GoalError
from apex.goals import Goal, GoalStatus, Limits
from apex.goals.store import GoalStore
from apex.goals.types import TERMINAL_STATES
from apex.server.errors import problem
from apex.server.goal_runner import state_json
from apex.server.registry import WORKFLOW_PREFIX
from apex.server.schemas import GoalRequest
from apex.server.state import ServerState, state_of
from apex.server.streaming import KEEPALIVE

router = APIRouter(prefix="/v1/goals", tags=["goals"])
RUNNING = ["active", "interrupted", "queued"]
"""States a goal can be paused or cancelled from (as the store may name them)."""


def goal_json(status: GoalStatus, running: bool) -> dict[str, Any]:
    """A goal as the API shows it (the stored workflow text left out).

    A goal this process runs is ``active``, even in the instant before its task has taken the
    goal's lease (when the store alone would read it as interrupted).
    """
    body = status.model_dump(mode="json", exclude={"spec": {"workflow_toml"}})
    if running and body["state"] in ("interrupted", "queued"):
        body |= {"state": "active", "reason": ""}
    return {"id": status.spec.id, "object": "goal", "running": running} | body


def _status(state: ServerState, goal_id: str) -> GoalStatus:
    try:
        return GoalStore(state.store).status(goal_id)
    except GoalError as error:
        raise problem(404, str(error), "goal_not_found") from None


def _shown(state: ServerState, goal_id: str) -> dict[str, Any]:
    return goal_json(_status(state, goal_id), state.runner.running(goal_id))


def _goal(state: ServerState, body: GoalRequest) -> Goal:
    name = body.workflow.removeprefix(WORKFLOW_PREFIX)
    served = state.registry.get(name)
    if served is None:
        raise problem(404, f"no workflow '{name}' is served here", "workflow_not_found", "workflow")
    command = body.verifier is not None and body.verifier.kind == "command"
    if command and not state.config.allow_command_verifiers:
        raise problem(
            400,
            "command verifiers run shell commands on the server; start it "
            "with --allow-command-verifiers to accept them",
            "command_verifier",
            "verifier",
        )
    given = body.limits.model_dump()
    if given["deadline"] is not None and given["deadline"].tzinfo is None:
        given["deadline"] = given["deadline"].replace(tzinfo=UTC)
    limits = Limits.model_validate(given)
    return Goal(
        body.objective,
        criteria=body.criteria,
        category=body.category,
        workflow=served.source,
        limits=limits,
        verifier=body.verifier,
        blocked_after=body.blocked_after,
        store=state.store,
        n_options=body.n_options,
    )


@router.post("", status_code=201, summary="Start a goal")
async def start_goal(body: GoalRequest, request: Request) -> JSONResponse:
    """Create the goal and start running it; its status."""
    state = state_of(request)
    goal = _goal(state, body)
    await asyncio.to_thread(goal.create)
    state.runner.dispatch(goal.id)
    shown = await asyncio.to_thread(_shown, state, goal.id)
    return JSONResponse(shown, status_code=201)


@router.get("", summary="Every goal, newest first")
def list_goals(request: Request, state: str | None = None) -> dict[str, Any]:
    """Every goal (``?state=active`` for one state), newest first."""
    server = state_of(request)
    goals = GoalStore(server.store).all(state)
    data = [goal_json(g, server.runner.running(g.spec.id)) for g in goals]
    return {"object": "list", "data": data}


@router.get("/{goal_id}", summary="A goal's state, cycles and totals")
def get_goal(goal_id: str, request: Request) -> dict[str, Any]:
    """The goal, its cycles, best answer and totals."""
    return _shown(state_of(request), goal_id)


@router.post("/{goal_id}/pause", summary="Pause at the next cycle boundary")
def pause_goal(goal_id: str, request: Request) -> dict[str, Any]:
    """Pause an active goal: the cycle in flight finishes, then the goal stops."""
    state = state_of(request)
    _status(state, goal_id)
    GoalStore(state.store).request(goal_id, "paused", RUNNING)
    state.runner.paused(goal_id)
    return _shown(state, goal_id)


@router.post("/{goal_id}/resume", summary="Resume a paused goal")
async def resume_goal(goal_id: str, request: Request) -> dict[str, Any]:
    """Resume a paused or interrupted goal from where it stopped."""
    state = state_of(request)
    status = await asyncio.to_thread(_status, state, goal_id)
    running = state.runner.running(goal_id)
    if status.state in TERMINAL_STATES:
        raise problem(409, f"goal {goal_id} is {status.state}; nothing to resume", "conflict")
    if status.state != "paused" and running:
        raise problem(409, f"goal {goal_id} is already running", "conflict")
    if status.state == "paused":  # a task still finishing its last cycle goes on by itself
        store = GoalStore(state.store)
        await asyncio.to_thread(store.set_goal_state, goal_id, "active", "resumed")
    state.runner.dispatch(goal_id)
    return await asyncio.to_thread(_shown, state, goal_id)


@router.post("/{goal_id}/cancel", summary="Cancel a goal")
def cancel_goal(goal_id: str, request: Request) -> dict[str, Any]:
    """Cancel a goal that is not finished: it stops at its next cycle boundary, for good."""
    state = state_of(request)
    _status(state, goal_id)
    GoalStore(state.store).request(goal_id, "cancelled", [*RUNNING, "paused"])
    state.runner.paused(goal_id)
    return _shown(state, goal_id)


def _sse(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, separators=(",", ":"))
    return f"event: {event['kind']}\ndata: {data}\n\n".encode()


async def _follow(
    state: ServerState, goal_id: str, first: GoalStatus, queue: asyncio.Queue[dict[str, Any]]
) -> AsyncIterator[bytes]:
    store = GoalStore(state.store)
    try:
        yield _sse(
            {
                "kind": "status",
                "goal_id": goal_id,
                "cycle": len(first.cycles),
                "data": goal_json(first, state.runner.running(goal_id)),
            }
        )
        if first.state in TERMINAL_STATES:
            return
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), state.config.keepalive_s)
            except TimeoutError:
                yield KEEPALIVE
                status = await asyncio.to_thread(store.status, goal_id)
                if status.state in TERMINAL_STATES and not state.runner.running(goal_id):
                    yield _sse(state_json(status))  # it ended where this process cannot see
                    return
                continue
            if event["kind"] == "closed":
                return
            yield _sse(event)
            if event["kind"] == "state" and event["data"]["state"] in TERMINAL_STATES:
                return
    finally:
        state.events.unsubscribe(goal_id, queue)


@router.get("/{goal_id}/events", summary="Follow a goal (server-sent events)")
async def goal_events(goal_id: str, request: Request) -> StreamingResponse:
    """The goal's status, then its events as they happen, until it reaches a terminal state."""
    state = state_of(request)
    queue = state.events.subscribe(goal_id)  # before reading the status: no event falls between
    try:
        first = await asyncio.to_thread(_status, state, goal_id)
    except BaseException:
        state.events.unsubscribe(goal_id, queue)
        raise
    return StreamingResponse(
        _follow(state, goal_id, first, queue),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
