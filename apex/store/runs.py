"""Reading a recorded run back: the run, its calls, candidates and critiques."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from apex.models.types import CallRecord
from apex.store.tables import CALLS, CANDIDATES, CRITIQUES, RUNS


class StoredCandidate(BaseModel):
    """A candidate as stored: enough to attribute feedback to its model by label."""

    member: int
    """Panel index."""
    label: str | None
    """The label the judge saw (None for failed members)."""
    model: str
    """``provider:model``."""
    ok: bool
    """Whether it produced an answer."""
    error: str | None = None
    """Failure kind and message."""
    text: str = ""
    """The answer ('' once pruned)."""
    extracted: str | None = None
    """The comparable answer extracted from it."""
    score: float | None = None
    """The judge's score."""


class StoredCall(CallRecord):
    """One model call of a run, as stored: the call record and its order in the run."""

    seq: int
    """Order within the run."""


class StoredCritique(BaseModel):
    """One problem a critic found."""

    critic_model: str
    """The critic."""
    critic_index: int
    """Index in the workflow's critics."""
    label: str
    """The reviewed candidate's label."""
    candidate_model: str | None
    """The reviewed candidate's model."""
    type: str
    """Problem type."""
    severity: str
    """low, medium or high."""
    detail: str = ""
    """What is wrong."""


class StoredRun(BaseModel):
    """A run as the store holds it."""

    run_id: str
    """The run's id."""
    created_at: datetime
    """When it was recorded (naive UTC)."""
    workflow: str
    """Workflow name."""
    category: str
    """Task category."""
    status: str
    """``ok`` or ``failed``."""
    synthesis_path: str
    """Which path produced the answer."""
    prompt: str
    """The prompt ('' once pruned)."""
    answer: str
    """The final answer ('' once pruned)."""
    analysis: dict[str, Any] = Field(default_factory=dict)
    """The judge's analysis (empty once pruned)."""
    cost_usd: float | None
    """Total cost, None when unknown."""
    latency_s: float
    """Wall time."""
    judge_model: str | None
    """The judge that produced the verdict."""
    pruned_at: datetime | None = None
    """When retention dropped its texts and raw rows."""
    evidence: dict[str, Any] = Field(default_factory=dict)
    """The cycle's evidence record ({} for runs recorded before migration 0004)."""
    candidates: list[StoredCandidate] = Field(default_factory=list)
    """Every panel member, in panel order."""
    calls: list[StoredCall] = Field(default_factory=list)
    """Every model call, in call order (empty once pruned)."""
    critiques: list[StoredCritique] = Field(default_factory=list)
    """Every critic finding (empty once pruned)."""

    def model_by_label(self) -> dict[str, str]:
        """Which model wrote each label."""
        return {c.label: c.model for c in self.candidates if c.label is not None}


def _dicts(conn: Connection, statement: sa.Select[Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(statement).mappings()]


def load_run(conn: Connection, run_id: str) -> StoredRun | None:
    """The run ``run_id`` with its rows, or None when it was never recorded."""
    run = conn.execute(sa.select(RUNS).where(RUNS.c.run_id == run_id)).mappings().first()
    if run is None:
        return None
    candidates = _dicts(
        conn,
        sa.select(CANDIDATES).where(CANDIDATES.c.run_id == run_id).order_by(CANDIDATES.c.member),
    )
    calls = _dicts(conn, sa.select(CALLS).where(CALLS.c.run_id == run_id).order_by(CALLS.c.seq))
    critiques = _dicts(
        conn, sa.select(CRITIQUES).where(CRITIQUES.c.run_id == run_id).order_by(CRITIQUES.c.id)
    )
    return StoredRun.model_validate(
        {
            **run,
            "analysis": run["analysis"] or {},
            "evidence": run["evidence"] or {},
            "candidates": candidates,
            "calls": calls,
            "critiques": critiques,
        }
    )
