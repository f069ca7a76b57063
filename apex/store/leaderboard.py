"""The leaderboard: one row per (model, role), read from the aggregates alone (pruning keeps
them)."""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from apex.store.aggregate import GLOBAL_CATEGORY, ModelAggregate
from apex.store.tables import AGGREGATES
from apex.types import Role

_FAILURE_PREFIX = "failure:"


class LeaderboardRow(BaseModel):
    """A model's record in one role and category (or ``*``: every category)."""

    model: str
    """``provider:model``."""
    role: Role
    """The seat: panel answers, critic work or judge work."""
    category: str
    """The category, or ``*``."""
    events: int
    """Evidence events recorded (lifetime)."""
    calls: int
    """Calls recorded: answers plus failures (lifetime)."""
    failures: int
    """Failed calls (lifetime)."""
    failures_by_kind: dict[str, int] = Field(default_factory=dict)
    """Failed calls by failure kind (lifetime)."""
    failure_rate: float | None
    """Recent failure rate (decayed), None without calls."""
    judge_mean: float | None
    """Mean judge score (decayed), None without scores."""
    judge_scores: int
    """Judge scores recorded (lifetime)."""
    accuracy: float | None
    """Ground-truth accuracy (decayed), None without ground truth."""
    ground_truth: float
    """Effective number of ground-truth verdicts behind ``accuracy`` (decayed)."""
    agreement: float | None
    """Share of answers that agreed with the reference (decayed), None without any."""
    findings: int
    """Critic findings against its answers (lifetime)."""


def to_row(agg: ModelAggregate, counts: dict[str, int]) -> LeaderboardRow:
    """A leaderboard row from an aggregate and its lifetime counts."""
    by_kind = {
        name.removeprefix(_FAILURE_PREFIX): n
        for name, n in sorted(counts.items())
        if name.startswith(_FAILURE_PREFIX)
    }
    failures = counts.get("failure", 0)
    return LeaderboardRow(
        model=agg.model,
        role=agg.role,
        category=agg.category,
        events=agg.events,
        calls=counts.get("answer", 0) + failures,
        failures=failures,
        failures_by_kind=by_kind,
        failure_rate=agg.failures / agg.calls if agg.calls > 0 else None,
        judge_mean=agg.judge_mean,
        judge_scores=counts.get("judge", 0),
        accuracy=agg.accuracy,
        ground_truth=agg.gt_n,
        agreement=agg.agree_sum / agg.agree_n if agg.agree_n > 0 else None,
        findings=counts.get("finding", 0),
    )


def _rank(row: LeaderboardRow) -> tuple[int, float, float, float, str]:
    missing = -1.0
    return (
        ("panel", "judge", "critic").index(row.role),
        -(row.accuracy if row.accuracy is not None else missing),
        -(row.judge_mean if row.judge_mean is not None else missing),
        row.failure_rate if row.failure_rate is not None else 1.0,
        row.model,
    )


def leaderboard_rows(
    conn: Connection, category: str | None, role: Role | None = None
) -> list[LeaderboardRow]:
    """Rows for ``category`` (None: ``*``) and ``role`` (None: all), panel rows first, each role
    best first: accuracy, judge score, fewest failures."""
    query = sa.select(AGGREGATES.c.stats, AGGREGATES.c.counts).where(
        AGGREGATES.c.category == (category or GLOBAL_CATEGORY)
    )
    if role is not None:
        query = query.where(AGGREGATES.c.role == role)
    rows = [
        to_row(ModelAggregate.model_validate(r.stats), dict(r.counts or {}))
        for r in conn.execute(query)
    ]
    return sorted(rows, key=_rank)
