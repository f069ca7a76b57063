"""Scripted critics and judges for the test server: valid JSON built from the request itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from apex.graph.prompts import boundary_of, read_blocks


def _properties(body: dict[str, Any]) -> dict[str, Any]:
    schema = body.get("response_format", {}).get("json_schema", {}).get("schema", {})
    return dict(schema.get("properties", {}))


def _labels(body: dict[str, Any]) -> list[str]:
    """The candidate labels, read from the judge schema the client sent."""
    items = _properties(body).get("scores", {}).get("items", {})
    return list(items.get("properties", {}).get("label", {}).get("enum", []))


def candidate_labels(body: dict[str, Any]) -> list[str]:
    """The labels of the candidate blocks of a critic's or judge's request, in order: read with
    the boundary its system message declares, so a candidate's forged blocks are not counted."""
    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    system = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
    boundary = boundary_of(system)
    if boundary is None or not messages:
        return []
    user = str(messages[-1].get("content", ""))
    return [label for label, _ in read_blocks(user, "candidate", boundary) if label]


def judge(
    answer: str | Callable[[dict[str, Any]], str] = "synthesized answer",
    *,
    select: str | None = None,
    score: float = 0.8,
    goal_met: bool | Callable[[dict[str, Any]], bool] = False,
    blocker: str = "",
) -> Callable[[dict[str, Any]], str]:
    """A judge behaviour: a full analysis, a score per label, and ``answer`` (or ``select``).

    When the request's schema asks for a goal assessment, ``goal_met`` (a value or a callable
    of the request body) and ``blocker`` answer it.
    """

    def respond(body: dict[str, Any]) -> str:
        labels = _labels(body)
        verdict: dict[str, Any] = {
            "consensus": ["the candidates agree on the main point"],
            "contradictions": [],
            "partial_coverage": [],
            "unique_insights": [],
            "blind_spots": ["none noticed"],
            "scores": [{"label": lb, "score": score, "reason": "scripted"} for lb in labels],
        }
        if select is not None:
            verdict["selected"] = select if select in labels else (labels[0] if labels else "A")
        else:
            verdict["final_answer"] = answer(body) if callable(answer) else answer
        if "goal_met" in _properties(body):
            met = goal_met(body) if callable(goal_met) else goal_met
            verdict |= {
                "goal_met": met,
                "reasons": ["scripted"],
                "missing": [] if met else ["more work"],
                "blocker": blocker,
            }
        return json.dumps(verdict)

    return respond


def critic(
    problem: str = "factual", severity: str = "medium", detail: str = "scripted finding"
) -> Callable[[dict[str, Any]], str]:
    """A critic behaviour: one problem for every candidate block in the request."""

    def respond(body: dict[str, Any]) -> str:
        labels = candidate_labels(body)
        problems = [{"type": problem, "severity": severity, "detail": detail}]
        return json.dumps({"reviews": [{"label": lb, "problems": problems} for lb in labels]})

    return respond
