"""Goals in the evidence store: the goal rows, their cycles, and the checkpointer beside them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import sqlalchemy as sa
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from sqlalchemy import exc
from sqlalchemy.engine import make_url

from apex.errors import GoalError, StoreError
from apex.faults import fault_point
from apex.goals.types import TERMINAL_STATES, CycleSummary, GoalSpec, GoalStateName, GoalStatus
from apex.store import EvidenceEvent, EvidenceStore, RunRows
from apex.store.apply import insert_ignore
from apex.store.engine import (
    DEFAULT_BUSY_TIMEOUT_S,
    read_transaction,
    store_error,
    write_transaction,
)
from apex.store.tables import GOAL_CYCLES, GOALS, utcnow

# Types that live in the loop's checkpointed state, allowed for deserialization.
_STATE_TYPES = [
    ("apex.graph.types", name)
    for name in (
        "Analysis", "CallRecord", "Candidate", "CandidateReport", "Critique", "FusionResult",
        "GoalAssessment", "JudgeInput", "LabeledCandidate", "LabelScore", "Problem",
        "ReliabilityHint", "Review",
    )
] + [
    ("apex.graph.nodes", "GenerateTask"), ("apex.graph.nodes", "CritiqueTask"),
    ("apex.graph.nodes", "JudgeOutcome"), ("apex.graph.types", "JudgeVerdict"),
    ("apex.models.types", "CallFailure"), ("apex.workflow", "PanelMember"),
    ("apex.workflow", "CriticConfig"), ("apex.goals.verify", "Verdict"),
]  # fmt: skip


_ORPHAN_BLOBS = sa.text(
    "DELETE FROM checkpoint_blobs b WHERE b.thread_id = :t AND NOT EXISTS ("
    "SELECT 1 FROM checkpoints c WHERE c.thread_id = b.thread_id "
    "AND c.checkpoint_ns = b.checkpoint_ns "
    "AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)"
)


class GoalStore:
    """Goal rows and cycles on an :class:`EvidenceStore`'s database (any process may read)."""

    def __init__(self, store: EvidenceStore) -> None:
        self.store = store
        """The evidence store whose database holds the goals."""

    def create(self, spec: GoalSpec) -> None:
        """Write the goal row (state active) before the loop's first step."""
        row = {
            "id": spec.id,
            "created_at": utcnow(),
            "updated_at": utcnow(),
            "state": "active",
            "reason": "",
            "objective": spec.objective,
            "spec": spec.model_dump(mode="json"),
            "best_answer": "",
        }
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
        return GoalStatus(
            spec=GoalSpec.model_validate(row.spec),
            state=row.state,
            reason=row.reason,
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

    def all(self, state: str | None = None) -> list[GoalStatus]:
        """Every goal (optionally in one state), newest first."""
        query = sa.select(GOALS.c.id).order_by(GOALS.c.created_at.desc())
        if state is not None:
            query = query.where(GOALS.c.state == state)
        try:
            with read_transaction(self.store.engine) as conn:
                ids = [r.id for r in conn.execute(query)]
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, "listing goals") from error
        return [self.status(i) for i in ids]

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
                conn.execute(insert_ignore(conn, GOAL_CYCLES, [row], ["goal_id", "cycle"]))
                conn.execute(
                    sa.update(GOALS).where(GOALS.c.id == goal_id).values(updated_at=utcnow())
                )
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, f"recording goal {goal_id}") from error

    def compact(self, goal_id: str) -> None:
        """Drop the goal's checkpoints except the latest top-level one.

        Called at a cycle boundary, when no fusion subgraph is running: resuming needs only the
        latest checkpoint, so a goal's checkpoints stay the same size however long it runs.
        """
        sqlite = self.store.engine.dialect.name == "sqlite"
        tables = ("checkpoints", "writes") if sqlite else ("checkpoints", "checkpoint_writes")
        keep = (
            "thread_id = :t AND NOT (checkpoint_ns = '' AND checkpoint_id = "
            "(SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = :t "
            "AND checkpoint_ns = ''))"
        )
        try:
            with write_transaction(self.store.engine) as conn:
                if not sa.inspect(conn).has_table("checkpoints"):
                    return
                for table in reversed(tables):  # writes first: they name their checkpoint
                    conn.execute(sa.text(f"DELETE FROM {table} WHERE {keep}"), {"t": goal_id})  # noqa: S608 - fixed names
                if not sqlite:  # PostgreSQL keeps channel values as versioned blobs
                    conn.execute(_ORPHAN_BLOBS, {"t": goal_id})
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, f"compacting goal {goal_id}") from error

    def finished_before(self, cutoff: datetime) -> list[str]:
        """Ids of goals in a terminal state last changed before ``cutoff`` (naive UTC)."""
        query = sa.select(GOALS.c.id).where(
            GOALS.c.state.in_(sorted(TERMINAL_STATES)), GOALS.c.updated_at < cutoff
        )
        with read_transaction(self.store.engine) as conn:
            return [r.id for r in conn.execute(query)]


def serializer() -> JsonPlusSerializer:
    """The checkpoint serializer, allowed to rebuild APEX's own state types."""
    return JsonPlusSerializer(allowed_msgpack_modules=_STATE_TYPES)


@asynccontextmanager
async def open_checkpointer(store: EvidenceStore) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """LangGraph's checkpointer on the store's own database (SQLite file or PostgreSQL)."""
    url = make_url(store.url)
    if url.get_backend_name() == "sqlite":
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with aiosqlite.connect(url.database or ":memory:") as conn:
            await conn.execute(f"PRAGMA busy_timeout = {int(DEFAULT_BUSY_TIMEOUT_S * 1000)}")
            saver = AsyncSqliteSaver(conn, serde=serializer())
            await saver.setup()
            yield saver
        return
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError as error:
        raise StoreError(
            "goals on PostgreSQL need langgraph-checkpoint-postgres: "
            "pip install 'apex-fusion[postgres]'"
        ) from error
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    async with AsyncPostgresSaver.from_conn_string(conninfo, serde=serializer()) as pg_saver:
        await pg_saver.setup()
        yield pg_saver


async def prune_checkpoints(store: EvidenceStore, older_than: timedelta) -> int:
    """Delete the checkpoints of goals that finished before the cutoff; how many goals."""
    goals = GoalStore(store).finished_before(utcnow() - older_than)
    if not goals:  # nothing to do: do not create the checkpointer's tables for nothing
        return 0
    async with open_checkpointer(store) as saver:
        for goal_id in goals:
            await saver.adelete_thread(goal_id)
    return len(goals)
