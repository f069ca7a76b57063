"""Runs and evidence: a recorded run, ground truth after the fact, and the leaderboard."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from apex.evidence import GLOBAL_CATEGORY, panel_weights
from apex.feedback import record_feedback
from apex.server.errors import problem
from apex.server.schemas import FeedbackRequest
from apex.server.state import state_of
from apex.store import StoredRun
from apex.types import Role

router = APIRouter(prefix="/v1", tags=["evidence"])


def _run(request: Request, run_id: str) -> StoredRun:
    run = state_of(request).store.run(run_id)
    if run is None:
        raise problem(404, f"no run '{run_id}' is recorded here", "run_not_found")
    return run


@router.get("/runs/{run_id}", summary="A recorded run")
def get_run(run_id: str, request: Request) -> dict[str, Any]:
    """The run as recorded: status (``ok``, ``failed`` or ``cancelled``), path, answer, calls."""
    return {"object": "run"} | _run(request, run_id).model_dump(mode="json", exclude={"evidence"})


@router.post("/runs/{run_id}/feedback", summary="Ground truth for a recorded run")
def feedback(run_id: str, body: FeedbackRequest, request: Request) -> dict[str, Any]:
    """Whether the run's answer was right (``correct``), or the right ``answer``; every panel
    member's record is updated. Giving it again changes nothing."""
    if body.correct is None and body.answer is None:
        raise problem(400, "say what was right: correct (true/false) or answer", "bad_request")
    run = _run(request, run_id)
    if run.status == "cancelled":
        raise problem(409, f"run {run_id} was cancelled; it has no answer to judge", "conflict")
    store = state_of(request).store
    added = record_feedback(store, run_id, correct=body.correct, answer=body.answer)
    return {"object": "feedback", "run_id": run_id, "recorded": added}


@router.get("/evidence", summary="The leaderboard: each model's record and weight")
def evidence(
    request: Request, category: str | None = None, role: Role | None = None
) -> dict[str, Any]:
    """Per (model, role): calls, failures by kind, judge scores, accuracy; panel rows carry
    their current vote weight in the category (all categories when none is given)."""
    store = state_of(request).store
    rows = store.leaderboard(category, role)
    cat = category or GLOBAL_CATEGORY
    weights = panel_weights(store, [r.model for r in rows if r.role == "panel"], cat)
    data = [
        row.model_dump(mode="json")
        | {"weight": weights[row.model] if row.role == "panel" else None}
        for row in rows
    ]
    return {"object": "list", "category": cat, "data": data}
