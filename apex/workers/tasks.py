"""The worker's two tasks, the same on SQLite and PostgreSQL: run a goal, and tick schedules.

:func:`run_goal` runs (or resumes) one goal by id under its lease and raises to have it retried:
:class:`~apex.errors.GoalInterrupted` when it stopped on an error that can pass or because this
worker is stopping, :class:`~apex.errors.GoalBusy` while another process runs it. :func:`tick`
fires due schedules and hands each new goal to the queue. Each backend wraps them: procrastinate
jobs on PostgreSQL (:mod:`apex.workers.pg`), a loop on SQLite (:mod:`apex.workers.sqlite_loop`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apex.errors import GoalInterrupted
from apex.goals.lease import Holder
from apex.goals.runner import drive
from apex.goals.store import GoalStore
from apex.goals.types import TERMINAL_STATES, GoalSpec
from apex.models.client import ModelClient
from apex.store import EvidenceStore
from apex.workers.firing import Firing, fire_due
from apex.workers.settings import WorkerSettings
from apex.workflow import parse_workflow


@dataclass(frozen=True)
class WorkerEvent:
    """Something a worker did, for its live display or its JSON log."""

    kind: str
    """worker_started, goal_started, goal_finished, goal_retry, goal_busy, schedule_fired,
    schedule_skipped, schedule_capped, worker_stopping, worker_stopped."""
    worker: str
    """The worker's id."""
    goal: str | None = None
    """The goal it is about, if any."""
    detail: dict[str, Any] = field(default_factory=dict)
    """State, reason, schedule, note..."""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class WorkerContext:
    """What the tasks need: the store, the settings, who this worker is, and how to queue."""

    store: EvidenceStore
    settings: WorkerSettings
    worker_id: str
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set on SIGTERM / Ctrl-C: running goals stop at their next cycle boundary."""
    on_event: Callable[[WorkerEvent], None] | None = None
    queue: Callable[[GoalSpec], Awaitable[None]] | None = None
    """Puts a fired goal's job on the queue (PostgreSQL; on SQLite the goal row is the queue)."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    running: set[str] = field(default_factory=set)
    """Goals this worker runs now."""
    clients: dict[str, ModelClient] = field(default_factory=dict)
    """One model client per workflow text, shared by the goals that use it (connections kept,
    provider concurrency limits counted across them); closed when the worker stops."""

    def client_for(self, spec: GoalSpec) -> ModelClient:
        """The shared client of the goal's workflow."""
        client = self.clients.get(spec.workflow_toml)
        if client is None:
            workflow = parse_workflow(spec.workflow_toml, spec.workflow)
            client = self.clients[spec.workflow_toml] = ModelClient(workflow.client_settings)
        return client

    @property
    def holder(self) -> Holder:
        """This worker as a goal lease's holder."""
        return Holder(f"apex worker {self.worker_id}")

    def emit(self, kind: str, goal: str | None = None, **detail: Any) -> None:
        """Report an event to the listener, if any."""
        if self.on_event is not None:
            self.on_event(WorkerEvent(kind, self.worker_id, goal, detail))


async def run_goal(ctx: WorkerContext, goal_id: str) -> str:
    """Run or resume the goal to its end (or a pause); its final state.

    Raises GoalBusy (another process runs it: retry later) or GoalInterrupted (retry: at once
    elsewhere when this worker is stopping, after a backoff otherwise).
    """
    goals = GoalStore(ctx.store)
    status = goals.status(goal_id)
    if status.state in TERMINAL_STATES or status.state == "paused":
        ctx.emit("goal_skipped", goal_id, state=status.state)
        return status.state
    ctx.emit("goal_started", goal_id, objective=status.spec.objective[:80])
    ctx.running.add(goal_id)
    try:
        final = await drive(
            status.spec,
            ctx.store,
            holder=ctx.holder,
            should_stop=ctx.stopping.is_set,
            lease_ttl_s=ctx.settings.stale_s,
            heartbeat_s=ctx.settings.heartbeat_s,
            client=ctx.client_for(status.spec),
        )
    finally:
        ctx.running.discard(goal_id)
    if final.state == "interrupted":
        if ctx.stopping.is_set():
            goals.mark_queued(goal_id, final.reason)
        ctx.emit("goal_interrupted", goal_id, reason=final.reason)
        raise GoalInterrupted(f"goal {goal_id} is interrupted: {final.reason}")
    ctx.emit("goal_finished", goal_id, state=final.state, reason=final.reason,
             cycles=len(final.cycles))  # fmt: skip
    return final.state


async def tick(ctx: WorkerContext) -> list[Firing]:
    """Fire the schedules due now and queue their goals; what each did."""
    firings = await asyncio.to_thread(fire_due, ctx.store, ctx.clock())
    for firing in firings:
        if firing.goal is not None and ctx.queue is not None:
            await ctx.queue(firing.goal)
        if firing.note not in ("not due", "paused", "removed"):
            goal = firing.goal.id if firing.goal else None
            ctx.emit(f"schedule_{firing.action}", goal, schedule=firing.schedule, note=firing.note)
    return firings
