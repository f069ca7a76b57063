"""The evidence store's tables (SQLModel), as they stand at the newest migration.

Alembic owns the schema (``store/versions``); these classes describe its head so that reads and
writes are typed, and a test checks that they match the migrations exactly.

    runs         one row per fusion cycle (prompt and answer blanked by pruning)
    calls        every model call of a run
    candidates   every panel member's answer, with its label, score and extracted answer
    critiques    one row per problem a critic found in a candidate
    evidence     one row per evidence event, unique on ``key``
    aggregates   running per-(model, role, category) statistics (a JSON ``stats`` column)
    goals        goal loops: spec, state, best answer, the schedule that fired it
    goal_cycles  one row per cycle of a goal
    goal_leases  which process runs a goal now, with its heartbeat (one row per running goal)
    schedules    scheduled goals: the rule, the goal template, the next firing
    workers      ``apex worker`` processes with their heartbeats

Timestamps are naive UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names, so that migrations and tables agree on every backend."""

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
"""The store's own metadata (not ``SQLModel.metadata``, which other packages may share)."""


class StoreModel(SQLModel, registry=registry(metadata=metadata)):
    """Base of the store's tables, bound to :data:`metadata`."""


def utcnow() -> datetime:
    """The current time as naive UTC, the way every timestamp is stored."""
    return datetime.now(UTC).replace(tzinfo=None)


class RunRow(StoreModel, table=True):
    """One fusion cycle."""

    __tablename__ = "runs"

    run_id: str = Field(primary_key=True)
    """The run's unique id (``FusionResult.run_id``)."""
    created_at: datetime = Field(default_factory=utcnow, index=True, sa_type=sa.DateTime)
    """When it was recorded."""
    workflow: str
    """Workflow name."""
    category: str
    """Task category."""
    status: str
    """``ok`` or ``failed``."""
    synthesis_path: str
    """Which path produced the answer."""
    prompt: str = Field(default="", sa_type=sa.Text)
    """The prompt ('' once pruned)."""
    answer: str = Field(default="", sa_type=sa.Text)
    """The final answer ('' once pruned or failed)."""
    analysis: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    """The judge's structured analysis ({} once pruned)."""
    cost_usd: float | None = None
    """Total cost, None when unknown."""
    latency_s: float = 0.0
    """Wall time of the cycle."""
    judge_model: str | None = None
    """The judge that produced the verdict."""
    pruned_at: datetime | None = Field(default=None, sa_type=sa.DateTime)
    """When its texts and raw rows were dropped by retention (migration 0002)."""
    evidence: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    """The cycle's evidence record, for verdicts that arrive later (migration 0004)."""


class CallRow(StoreModel, table=True):
    """One model call made during a run."""

    __tablename__ = "calls"

    id: int | None = Field(default=None, primary_key=True)
    """Row id."""
    run_id: str = Field(foreign_key="runs.run_id", index=True)
    """The run."""
    seq: int
    """Order within the run."""
    role: str
    """panel, critic or judge."""
    model: str
    """``provider:model``."""
    member: int | None = None
    """Panel index for panel calls."""
    ok: bool
    """Whether it produced a usable answer."""
    failure_kind: str | None = None
    """Typed failure, when it failed."""
    error: str | None = Field(default=None, sa_type=sa.Text)
    """One-line failure message."""
    latency_s: float = 0.0
    """Wall time, retries included."""
    prompt_tokens: int | None = None
    """Prompt tokens as reported."""
    completion_tokens: int | None = None
    """Completion tokens as reported."""
    cost_usd: float | None = None
    """Cost, None when unknown."""
    attempts: int = 1
    """HTTP attempts."""


class CandidateRow(StoreModel, table=True):
    """A panel member's answer in a run."""

    __tablename__ = "candidates"

    id: int | None = Field(default=None, primary_key=True)
    """Row id."""
    run_id: str = Field(foreign_key="runs.run_id", index=True)
    """The run."""
    member: int
    """Panel index."""
    label: str | None = None
    """Anonymous label the judge saw (None for failed members)."""
    model: str
    """``provider:model``."""
    ok: bool
    """Whether it produced an answer."""
    error: str | None = Field(default=None, sa_type=sa.Text)
    """Failure kind and message."""
    text: str = Field(default="", sa_type=sa.Text)
    """The answer ('' once pruned)."""
    extracted: str | None = None
    """The comparable answer extracted from it (vote and fallbacks)."""
    score: float | None = None
    """The judge's score."""
    latency_s: float = 0.0
    """Call wall time."""
    tokens: int | None = None
    """Total tokens."""
    cost_usd: float | None = None
    """Call cost."""


class CritiqueRow(StoreModel, table=True):
    """One problem a critic found in one candidate."""

    __tablename__ = "critiques"

    id: int | None = Field(default=None, primary_key=True)
    """Row id."""
    run_id: str = Field(foreign_key="runs.run_id", index=True)
    """The run."""
    critic_model: str
    """The critic's ``provider:model``."""
    critic_index: int
    """Index in the workflow's critics."""
    label: str
    """The reviewed candidate's label."""
    candidate_model: str | None = None
    """The reviewed candidate's model (None if the label matched no candidate)."""
    type: str
    """Problem type."""
    severity: str
    """low, medium or high."""
    detail: str = Field(default="", sa_type=sa.Text)
    """What is wrong."""


class EvidenceRow(StoreModel, table=True):
    """One evidence event; ``key`` makes replays harmless."""

    __tablename__ = "evidence"

    id: int | None = Field(default=None, primary_key=True)
    """Row id."""
    key: str = Field(unique=True)
    """The event's unique key."""
    run_id: str | None = Field(default=None, index=True)
    """The run it came from, if any."""
    created_at: datetime = Field(default_factory=utcnow, index=True, sa_type=sa.DateTime)
    """When it was recorded."""
    model: str
    """The model it is about."""
    role: str = Field(default="panel", sa_column_kwargs={"server_default": "panel"})
    """The seat it is about: panel, critic or judge (migration 0004)."""
    category: str
    """Task category."""
    kind: str
    """What kind of evidence."""
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    """The whole event, as JSON."""


class AggregateRow(StoreModel, table=True):
    """A model's running statistics in one role and category (``*`` = every category)."""

    __tablename__ = "aggregates"

    model: str = Field(primary_key=True)
    """``provider:model``."""
    role: str = Field(primary_key=True, sa_column_kwargs={"server_default": "panel"})
    """panel, critic or judge (migration 0004)."""
    category: str = Field(primary_key=True)
    """Task category, or ``*``."""
    stats: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    """The ``ModelAggregate``, dumped: its fields change without a migration."""
    counts: dict[str, int] = Field(default_factory=dict, sa_type=sa.JSON)
    """Lifetime (undecayed) counts by event kind and ``failure:KIND``, for the leaderboard."""
    events: int = 0
    """Evidence events applied to it."""
    updated_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    """When it last changed."""


class GoalRow(StoreModel, table=True):
    """A goal loop: its spec, state and totals (cycles are in ``goal_cycles``)."""

    __tablename__ = "goals"

    id: str = Field(primary_key=True)
    """Goal id, also the checkpointer's thread id."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    """When it was started."""
    updated_at: datetime = Field(default_factory=utcnow, index=True, sa_type=sa.DateTime)
    """When it last changed."""
    state: str = Field(index=True)
    """active, paused, complete, budget_limited, blocked, failed or cancelled."""
    reason: str = ""
    """Why it is in that state."""
    objective: str = Field(sa_type=sa.Text)
    """What to achieve (also inside ``spec``; here for listings)."""
    spec: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    """The ``GoalSpec``, dumped."""
    best_answer: str = Field(default="", sa_type=sa.Text)
    """The best answer so far, or the wrap-up summary."""
    queued_at: datetime | None = Field(default=None, sa_type=sa.DateTime)
    """When it was put on the queue for workers (None: run by the process that started it)."""
    schedule: str | None = Field(default=None, index=True)
    """The schedule whose firing created it (migration 0005)."""


class GoalCycleRow(StoreModel, table=True):
    """One cycle of a goal."""

    __tablename__ = "goal_cycles"

    goal_id: str = Field(primary_key=True, foreign_key="goals.id")
    """The goal."""
    cycle: int = Field(primary_key=True)
    """1-based cycle number."""
    run_id: str
    """The fusion run of the cycle."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    """When it was recorded."""
    cost_usd: float | None = None
    """Cost of the cycle, None when unknown."""
    tokens: int = 0
    """Tokens of the cycle."""
    summary: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    """The ``CycleSummary``, dumped."""


class GoalLeaseRow(StoreModel, table=True):
    """The process running a goal now; taken over once its heartbeat is stale."""

    __tablename__ = "goal_leases"

    goal_id: str = Field(primary_key=True, foreign_key="goals.id")
    """The goal."""
    holder: str
    """Who runs it, for messages (``apex worker w-...``, ``apex goal resume``)."""
    host: str
    """The holder's host name."""
    pid: int
    """The holder's process id (a dead pid on the same host frees the lease at once)."""
    acquired_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    """When it took the goal."""
    heartbeat_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    """Its last heartbeat."""
    expires_at: datetime = Field(sa_type=sa.DateTime)
    """When the lease is stale unless renewed (the holder's heartbeat plus its time to live)."""


class ScheduleRow(StoreModel, table=True):
    """A scheduled goal: a rule, a goal template and when it fires next."""

    __tablename__ = "schedules"

    name: str = Field(primary_key=True)
    """The schedule's name."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    """When it was added."""
    updated_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    """When it last changed."""
    state: str
    """active or paused."""
    spec: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    """The ``ScheduleSpec`` (rule, options, goal template), dumped."""
    next_fire_at: datetime = Field(index=True, sa_type=sa.DateTime)
    """The next due time."""
    last_fired_at: datetime | None = Field(default=None, sa_type=sa.DateTime)
    """When it last created a goal."""
    last_goal_id: str | None = None
    """The goal it last created."""
    note: str = ""
    """What happened at the last due time (fired, skipped and why, capped)."""


class WorkerRow(StoreModel, table=True):
    """An ``apex worker`` process."""

    __tablename__ = "workers"

    id: str = Field(primary_key=True)
    """Worker id (``w-...``)."""
    host: str
    """Host name."""
    pid: int
    """Process id."""
    concurrency: int
    """Goals it runs at once."""
    state: str
    """running or stopping."""
    started_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    """When it started."""
    heartbeat_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    """Its last heartbeat."""
    expires_at: datetime = Field(sa_type=sa.DateTime)
    """When it counts as gone unless it beats again."""


RUNS = metadata.tables["runs"]
"""The ``runs`` table, for Core statements."""
CALLS = metadata.tables["calls"]
"""The ``calls`` table."""
CANDIDATES = metadata.tables["candidates"]
"""The ``candidates`` table."""
CRITIQUES = metadata.tables["critiques"]
"""The ``critiques`` table."""
EVIDENCE = metadata.tables["evidence"]
"""The ``evidence`` table."""
AGGREGATES = metadata.tables["aggregates"]
"""The ``aggregates`` table."""
GOALS = metadata.tables["goals"]
"""The ``goals`` table."""
GOAL_CYCLES = metadata.tables["goal_cycles"]
"""The ``goal_cycles`` table."""
GOAL_LEASES = metadata.tables["goal_leases"]
"""The ``goal_leases`` table."""
SCHEDULES = metadata.tables["schedules"]
"""The ``schedules`` table."""
WORKERS = metadata.tables["workers"]
"""The ``workers`` table."""
