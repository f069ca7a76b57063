"""What ``apex status`` shows: live workers, the queue, running goals, next firings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import exc

from apex.goals.lease import LeaseStore
from apex.goals.queue import is_postgres
from apex.goals.store import GoalStore
from apex.store import EvidenceStore
from apex.store.engine import read_transaction, store_error
from apex.store.tables import GOALS, utcnow
from apex.workers.firing import shown_state, spent
from apex.workers.registry import WorkerInfo, live_workers
from apex.workers.schedules import ScheduleStore


@dataclass(frozen=True)
class RunningGoal:
    """A goal a live process runs now."""

    goal_id: str
    holder: str
    heartbeat_age_s: float
    cycles: int
    objective: str


@dataclass(frozen=True)
class Firing:
    """A schedule's next firing."""

    schedule: str
    state: str
    next_fire_at: datetime
    """Naive UTC."""
    rule: str
    note: str


@dataclass(frozen=True)
class Status:
    """The whole picture of a database's workers."""

    backend: str
    workers: list[WorkerInfo]
    queued: int
    """Goals waiting for a worker."""
    interrupted: int
    """Queued goals waiting for a retry (or for a person, after their last one)."""
    running: list[RunningGoal]
    firings: list[Firing]


def status(store: EvidenceStore) -> Status:
    """Read the status of ``store``'s workers, queue, running goals and schedules."""
    now = utcnow()
    counts = (
        sa.select(GOALS.c.state, sa.func.count())
        .where(GOALS.c.queued_at.is_not(None), GOALS.c.state.in_(["queued", "interrupted"]))
        .group_by(GOALS.c.state)
    )
    try:
        with read_transaction(store.engine) as conn:
            by_state = {state: int(n) for state, n in conn.execute(counts)}
    except exc.SQLAlchemyError as error:
        raise store_error(error, store.url, "reading the queue") from error
    goals = GoalStore(store)
    running = []
    for lease in LeaseStore(store).leases().values():
        if not lease.live(now):
            continue
        goal = goals.status(lease.goal_id)
        age = (now - lease.heartbeat_at).total_seconds()
        running.append(RunningGoal(lease.goal_id, lease.holder.label, age, len(goal.cycles),
                                   goal.spec.objective))  # fmt: skip
    firings = []
    for info in ScheduleStore(store).all():
        state = shown_state(info, spent(store, info, datetime.now(UTC)))
        firings.append(Firing(info.spec.name, state, info.next_fire_at, info.spec.rule.describe(),
                              info.note))  # fmt: skip
    return Status(
        backend="postgresql" if is_postgres(store) else "sqlite",
        workers=live_workers(store),
        queued=by_state.get("queued", 0),
        interrupted=by_state.get("interrupted", 0),
        running=sorted(running, key=lambda r: r.goal_id),
        firings=firings,
    )
