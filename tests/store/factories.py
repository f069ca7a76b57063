"""Test data: a realistic fusion result and the evidence events it yields."""

from __future__ import annotations

from collections.abc import Sequence

from apex.graph.types import (
    Analysis,
    CallRecord,
    CandidateReport,
    Critique,
    FusionResult,
    Problem,
    Review,
)
from apex.recording import cycle_record, run_rows
from apex.store import EvidenceEvent, EvidenceStore, ModelAggregate, RunRows, record_keys
from apex.store.tables import utcnow
from apex.workflow import ExtractConfig

PANEL = ("lab:m1", "lab:m2", "lab:m3", "lab:m4", "lab:m5")


def fusion_result(
    run_id: str = "run-1", category: str = "math", panel: tuple[str, ...] = PANEL[:3]
) -> FusionResult:
    """A cycle where the last panel member timed out, one critic found two problems in A."""
    labels = "ABCDEFGH"
    candidates = []
    calls = []
    for member, model in enumerate(panel):
        failed = member == len(panel) - 1
        calls.append(
            CallRecord(
                role="panel",
                model=model,
                member=member,
                ok=not failed,
                failure_kind="timeout" if failed else None,
                error="no answer within 5s" if failed else None,
                latency_s=0.5 + member,
                prompt_tokens=None if failed else 12,
                completion_tokens=None if failed else 30,
                cost_usd=None if failed else 0.001,
                attempts=3 if failed else 1,
            )
        )
        candidates.append(
            CandidateReport(
                label=None if failed else labels[member],
                member=member,
                model=model,
                ok=not failed,
                error="timeout: no answer within 5s" if failed else None,
                text="" if failed else f"The answer is {member + 4}. " + "x" * 200,
                score=None if failed else 0.9 - 0.2 * member,
                latency_s=0.5 + member,
                tokens=None if failed else 42,
                cost_usd=None if failed else 0.001,
            )
        )
    critique_call = CallRecord(role="critic", model="lab:critic", ok=True, latency_s=0.3)
    judge_call = CallRecord(role="judge", model="lab:judge", ok=True, latency_s=0.7)
    critique = Critique(
        critic="lab:critic",
        index=0,
        call=critique_call,
        reviews=[
            Review(
                label="A",
                problems=[
                    Problem(type="factual", severity="high", detail="wrong number"),
                    Problem(type="format", severity="low", detail="no units"),
                ],
            ),
            Review(label="B", problems=[]),
        ],
    )
    return FusionResult(
        run_id=run_id,
        prompt="What is 2+2? " + "p" * 300,
        category=category,
        workflow="lab",
        answer="4 " + "a" * 300,
        synthesis_path="judge",
        analysis=Analysis(consensus=["it is a number"], blind_spots=["units"]),
        candidates=candidates,
        critiques=[critique],
        calls=[*calls, critique_call, judge_call],
        judge_model="lab:judge",
        extracted={labels[m]: str(m + 4) for m in range(len(panel) - 1)},
        cost_usd=None,
        latency_s=2.5,
    )


def events_for(result: FusionResult) -> list[EvidenceEvent]:
    """The evidence a cycle yields: answers or failures, judge scores, critic findings."""
    events: list[EvidenceEvent] = []
    for cand in result.candidates:
        if cand.ok:
            events.append(EvidenceEvent(model=cand.model, category=result.category, kind="answer"))
            if cand.score is not None:
                events.append(
                    EvidenceEvent(
                        model=cand.model, category=result.category, kind="judge", score=cand.score
                    )
                )
        else:
            events.append(
                EvidenceEvent(
                    model=cand.model,
                    category=result.category,
                    kind="failure",
                    failure_kind="timeout",
                )
            )
    by_label = {c.label: c.model for c in result.candidates if c.label}
    for critique in result.critiques:
        for review in critique.reviews:
            for problem in review.problems:
                events.append(
                    EvidenceEvent(
                        model=by_label[review.label],
                        category=result.category,
                        kind="finding",
                        finding_type=problem.type,
                        severity=problem.severity,
                    )
                )
    return events


def verdict(model: str, category: str, correct: bool) -> EvidenceEvent:
    """A ground-truth verdict on one of ``model``'s answers."""
    return EvidenceEvent(model=model, category=category, kind="verdict", correct=correct)


def fusion_rows(result: FusionResult) -> RunRows:
    """``result``'s rows, as ``apex.recording`` builds them."""
    return run_rows(result, cycle_record(result, ExtractConfig(kind="number")), utcnow())


def record_fusion(
    store: EvidenceStore, result: FusionResult, events: Sequence[EvidenceEvent]
) -> None:
    """Record ``result``'s rows (as ``apex.recording`` builds them) with ``events``."""
    store.record_run(fusion_rows(result), events)


def panel_records(
    store: EvidenceStore, models: Sequence[str], category: str
) -> dict[str, ModelAggregate]:
    """Each model's panel record in ``category``, read in one query."""
    keys = [k for k in record_keys(models, category) if k[2] == category]
    return {model: agg for (model, _, _), agg in store.get_keys(keys).items()}
