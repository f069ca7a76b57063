"""Turning a :class:`~apex.graph.types.FusionResult` into table rows (pure, no database)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from apex.graph.types import FusionResult

_CALL_FIELDS = {
    "role",
    "model",
    "member",
    "ok",
    "failure_kind",
    "error",
    "latency_s",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "attempts",
}


class RunRows(BaseModel):
    """Every row one fusion cycle writes, as plain dicts ready for ``INSERT``."""

    run: dict[str, Any]
    """The ``runs`` row."""
    calls: list[dict[str, Any]] = Field(default_factory=list)
    """The ``calls`` rows, in call order."""
    candidates: list[dict[str, Any]] = Field(default_factory=list)
    """The ``candidates`` rows, in panel order."""
    critiques: list[dict[str, Any]] = Field(default_factory=list)
    """The ``critiques`` rows, one per problem."""


def run_rows(result: FusionResult, now: datetime) -> RunRows:
    """The rows of ``result``, stamped ``now`` (naive UTC)."""
    run_id = result.run_id
    run = {
        "run_id": run_id,
        "created_at": now,
        "workflow": result.workflow,
        "category": result.category,
        "status": "ok" if result.ok else "failed",
        "synthesis_path": result.synthesis_path,
        "prompt": result.prompt,
        "answer": result.answer,
        "analysis": result.analysis.model_dump(mode="json"),
        "cost_usd": result.cost_usd,
        "latency_s": result.latency_s,
        "judge_model": result.judge_model,
        "pruned_at": None,
    }
    calls = [
        {"run_id": run_id, "seq": seq, **call.model_dump(mode="json", include=_CALL_FIELDS)}
        for seq, call in enumerate(result.calls)
    ]
    candidates = [
        {
            "run_id": run_id,
            "member": c.member,
            "label": c.label,
            "model": c.model,
            "ok": c.ok,
            "error": c.error,
            "text": c.text,
            "extracted": result.extracted.get(c.label) if c.label is not None else None,
            "score": c.score,
            "latency_s": c.latency_s,
            "tokens": c.tokens,
            "cost_usd": c.cost_usd,
        }
        for c in result.candidates
    ]
    by_label = {c.label: c.model for c in result.candidates if c.label is not None}
    critiques = [
        {
            "run_id": run_id,
            "critic_model": critique.critic,
            "critic_index": critique.index,
            "label": review.label,
            "candidate_model": by_label.get(review.label),
            "type": problem.type,
            "severity": problem.severity,
            "detail": problem.detail,
        }
        for critique in result.critiques
        for review in critique.reviews
        for problem in review.problems
    ]
    return RunRows(run=run, calls=calls, candidates=candidates, critiques=critiques)
