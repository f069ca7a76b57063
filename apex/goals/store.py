"""Goals in the evidence store: the goal rows and their cycles.

The checkpointer beside them lives in :mod:`apex.goals.checkpoints` (re-exported here), the
leases that say which process runs a goal in :mod:`apex.goals.lease`. A goal stored as
``active`` whose lease is gone or stale is read as ``interrupted``: its process died or stopped
before it could say so (a SIGKILL leaves no chance to write anything).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy import exc

from apex.errors import GoalError
from apex.faults import fault_point
from apex.goals import checkpoints
from apex.goals.checkpoints import open_checkpointer, serializer
from apex.goals.lease import Lease, LeaseStore
from apex.goals.types import TERMINAL_STATES, CycleSummary, GoalSpec, GoalStateName, GoalStatus
from apex.store import EvidenceEvent, EvidenceStore, RunRows
from apex.store.apply import insert_ignore
from apex.store.engine import read_transaction, store_error, write_transaction
from apex.store.tables import GOAL_CYCLES, GOALS, utcnow

__all__ = ["GoalStore", "goal_row", "open_checkpointer", "prune_checkpoints", "serializer"]


def goal_row(spec: GoalSpec, state: GoalStateName = "active") -> dict[str, object]:
    """The ``goals`` row of a new goal (``queued``: put on the queue for workers)."""
    now = utcnow()
    return {
        "id": spec.id,
        "created_at": now,
        "updated_at": now,
        "state": state,
        "reason": "",
        "objective": spec.objective,
        "spec": spec.model_dump(mode="json"),
        "best_answer": "",
        "queued_at": now if state == "queued" else None,
        "schedule": spec.schedule,
    }


def effective_state(state: str, lease: Lease | None, now: datetime | None = None) -> str:
    """The state to show: ``active`` without a live lease is ``interrupted``."""
    if state == "active" and (lease is None or not lease.live(now)):
        return "interrupted"
    return state


class GoalStore:
    """Goal rows and cycles on an :class:`EvidenceStore`'s database (any process may read)."""

    def __init__(
        self, store: EvidenceStore, checkpointer: BaseCheckpointSaver[str] | None = None
    ) -> None:
        self.store = store
        """The evidence store whose database holds the goals."""
        self.checkpointer = checkpointer
        """The open checkpointer a running goal graph uses (compaction goes through it)."""

    def create(self, spec: GoalSpec, state: GoalStateName = "active") -> None:
        """Write the goal row before the loop's first step (``queued``: for workers)."""
        row = goal_row(spec, state)
        try:
            with write_transaction(self.store.engine) as conn:
                conn.execute(sa.insert(GOALS), [row])
        except exc.IntegrityError as error:
            raise GoalError(f"a goal with id '{spec.id}' already exists") from error
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, f"creating goal {spec.id}") from error

    def spec(self, goal_id: str) -> GoalSpec:
        """The goal's spec (raises GoalError for an unknown id)."""
        return self.status(goal_id).spec

    def status(self, goal_id: str) -> GoalStatus:
        """The goal, its state, cycles and totals."""
        try:
            with read_transaction(self.store.engine) as conn:
                row = conn.execute(sa.select(GOALS).where(GOALS.c.id == goal_id)).first()
                cycles = conn.execute(
                    sa.select(GOAL_CYCLES.c.summary)
                    .where(GOAL_CYCLES.c.goal_id == goal_id)
                    .order_by(GOAL_CYCLES.c.cycle)
                ).all()
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, f"reading goal {goal_id}") from error
        if row is None:
            raise GoalError(f"no goal '{goal_id}' in {self.store.masked_url}; see apex goal list")
        summaries = [CycleSummary.model_validate(c.summary) for c in cycles]
        lease = LeaseStore(self.store).leases([goal_id]).get(goal_id)
        state, reason = effective_state(row.state, lease), row.reason
        if state != row.state:
            reason = (
                f"its process stopped without a word (last heartbeat {lease.heartbeat_at:%H:%M:%S}"
                " UTC)"
                if lease
                else "no process runs it"
            ) + f"; resume it with `apex goal resume {goal_id}`"
        return GoalStatus(
            spec=GoalSpec.model_validate(row.spec),
            state=state,
            reason=reason,
            holder=lease.describe() if lease and lease.live() else "",
            queued=row.queued_at is not None,
            cycles=summaries,
            best_answer=row.best_answer,
            cost_usd=sum(c.cost_usd or 0.0 for c in summaries),
            tokens=sum(c.tokens for c in summaries),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def cycles(self, goal_id: str) -> list[CycleSummary]:
        """The goal's cycles, in order."""
        return self.status(goal_id).cycles

    def all(self, state: str | None = None, schedule: str | None = None) -> list[GoalStatus]:
        """Every goal (optionally in one state, or of one schedule), newest first."""
        query = sa.select(GOALS.c.id).order_by(GOALS.c.created_at.desc())
        if state is not None:  # `interrupted` is also read from `active` rows without a lease
            stored = [state, "active"] if state == "interrupted" else [state]
            query = query.where(GOALS.c.state.in_(stored))
        if schedule is not None:
            query = query.where(GOALS.c.schedule == schedule)
        try:
            with read_transaction(self.store.engine) as conn:
                ids = [r.id for r in conn.execute(query)]
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, "listing goals") from error
        found = [self.status(i) for i in ids]
        return [g for g in found if state is None or g.state == state]

    def runnable(self) -> list[tuple[str, str | None]]:
        """Queued goals a worker may run now, oldest first: ``(goal id, schedule)``.

        Those waiting (``queued``) and those of the queue left ``interrupted`` (their worker
        died, or an error that can pass stopped them); a live lease means someone runs it.
        """
        query = (
            sa.select(GOALS.c.id, GOALS.c.state, GOALS.c.schedule)
            .where(
                GOALS.c.queued_at.is_not(None),
                GOALS.c.state.in_(["queued", "active", "interrupted"]),
            )
            .order_by(GOALS.c.created_at)
        )
        try:
            with read_transaction(self.store.engine) as conn:
                rows = conn.execute(query).all()
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, "listing queued goals") from error
        leases = LeaseStore(self.store).leases([r.id for r in rows]) if rows else {}
        now = utcnow()
        return [
            (r.id, r.schedule)
            for r in rows
            if effective_state(r.state, leases.get(r.id), now) in ("queued", "interrupted")
            and not (r.id in leases and leases[r.id].live(now))
        ]

    def start_running(self, goal_id: str) -> None:
        """Mark a queued or interrupted goal active (its lease is held); others stay as they are."""
        query = (
            sa.update(GOALS)
            .where(GOALS.c.id == goal_id, GOALS.c.state.in_(["queued", "interrupted"]))
            .values(state="active", reason="", updated_at=utcnow())
        )
        try:
            with write_transaction(self.store.engine) as conn:
                conn.execute(query)
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, f"updating goal {goal_id}") from error

    def mark_queued(self, goal_id: str, reason: str = "") -> None:
        """Put the goal on the queue: state ``queued``, ``queued_at`` set if it was not."""
        now = utcnow()
        query = (
            sa.update(GOALS)
            .where(GOALS.c.id == goal_id)
            .values(
                state="queued",
                reason=reason,
                updated_at=now,
                queued_at=sa.func.coalesce(GOALS.c.queued_at, now),
            )
        )
        try:
            with write_transaction(self.store.engine) as conn:
                conn.execute(query)
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, f"queueing goal {goal_id}") from error

    def goal_state(self, goal_id: str) -> GoalStateName:
        """The stored state (another process may have paused or cancelled the goal)."""
        return self.status(goal_id).state

    def set_goal_state(
        self, goal_id: str, state: GoalStateName, reason: str = "", best_answer: str | None = None
    ) -> None:
        """Change the state (and the best answer, when given)."""
        values: dict[str, object] = {"state": state, "reason": reason, "updated_at": utcnow()}
        if best_answer is not None:
            values["best_answer"] = best_answer
        try:
            with write_transaction(self.store.engine) as conn:
                conn.execute(sa.update(GOALS).where(GOALS.c.id == goal_id).values(**values))
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, f"updating goal {goal_id}") from error

    def set_best_answer(self, goal_id: str, best_answer: str) -> None:
        """Keep the best answer so far, leaving the state alone."""
        try:
            with write_transaction(self.store.engine) as conn:
                conn.execute(
                    sa.update(GOALS)
                    .where(GOALS.c.id == goal_id)
                    .values(best_answer=best_answer, updated_at=utcnow())
                )
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, f"updating goal {goal_id}") from error

    def request(self, goal_id: str, state: GoalStateName, allowed: Sequence[str]) -> GoalStatus:
        """Move a goal to ``state`` (pause, cancel, resume) if its current state allows it."""
        current = self.status(goal_id)
        if current.state not in allowed:
            raise GoalError(
                f"goal {goal_id} is {current.state}; it can be {state} only when "
                f"{' or '.join(allowed)}"
            )
        self.set_goal_state(goal_id, state, f"{state} by request")
        return self.status(goal_id)

    def record_cycle(
        self,
        goal_id: str,
        summary: CycleSummary,
        rows: RunRows,
        events: Sequence[EvidenceEvent],
    ) -> None:
        """The cycle's run and evidence, then its row: each write idempotent on its key."""
        self.store.record_run(rows, events)
        fault_point("evidence_write")
        row = {
            "goal_id": goal_id,
            "cycle": summary.cycle,
            "run_id": summary.run_id,
            "created_at": utcnow(),
            "cost_usd": summary.cost_usd,
            "tokens": summary.tokens,
            "summary": summary.model_dump(mode="json"),
        }
        try:
            with write_transaction(self.store.engine) as conn:
                conn.execute(insert_ignore(conn, GOAL_CYCLES, ["goal_id", "cycle"]), [row])
                conn.execute(
                    sa.update(GOALS).where(GOALS.c.id == goal_id).values(updated_at=utcnow())
                )
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, f"recording goal {goal_id}") from error

    async def compact(self, goal_id: str) -> None:
        """Drop the goal's checkpoints but the latest top-level one (between cycles).

        Through :attr:`checkpointer` when set, else a checkpointer opened for the call; see
        :func:`apex.goals.checkpoints.compact`.
        """
        try:
            if self.checkpointer is not None:
                await checkpoints.compact(self.checkpointer, goal_id)
                return
            async with open_checkpointer(self.store) as saver:
                await checkpoints.compact(saver, goal_id)
        except checkpoints.CHECKPOINT_ERRORS as error:
            raise store_error(error, self.store.url, f"compacting goal {goal_id}") from error

    def finished_before(self, cutoff: datetime) -> list[str]:
        """Ids of goals in a terminal state last changed before ``cutoff`` (naive UTC)."""
        query = sa.select(GOALS.c.id).where(
            GOALS.c.state.in_(sorted(TERMINAL_STATES)), GOALS.c.updated_at < cutoff
        )
        with read_transaction(self.store.engine) as conn:
            return [r.id for r in conn.execute(query)]


async def prune_checkpoints(store: EvidenceStore, older_than: timedelta) -> int:
    """Delete the checkpoints of goals that finished before the cutoff; how many goals."""
    goals = GoalStore(store).finished_before(utcnow() - older_than)
    if not goals:  # nothing to do: do not create the checkpointer's tables for nothing
        return 0
    async with open_checkpointer(store) as saver:
        for goal_id in goals:
            await saver.adelete_thread(goal_id)
    return len(goals)
