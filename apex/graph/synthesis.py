"""Pure steps of a cycle: labelling, judge input, vote, best record, and the final result."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Literal

from apex.graph.nodes import JudgeOutcome
from apex.graph.types import (
    Analysis,
    Candidate,
    CandidateReport,
    Critique,
    FusionResult,
    JudgeInput,
    LabeledCandidate,
    ReliabilityHint,
    Review,
    SynthesisPath,
)
from apex.vote import extract, plurality
from apex.workflow import Workflow

LABELS = "ABCDEFGH"


def assign_labels(candidates: list[Candidate], rng: random.Random) -> dict[int, str]:
    """Shuffled neutral labels for the successful candidates, by panel member index.

    The permutation is random, so a label says nothing about panel position or arrival order.
    """
    members = sorted(c.member for c in candidates if c.ok)
    rng.shuffle(members)
    return {member: LABELS[i] for i, member in enumerate(members)}


def labeled(candidates: list[Candidate], labels: Mapping[int, str]) -> list[LabeledCandidate]:
    """The labelled candidates in label order."""
    out = [LabeledCandidate(label=labels[c.member], text=c.text) for c in candidates if c.ok]
    return sorted(out, key=lambda c: c.label)


def label_weights(
    candidates: list[Candidate], labels: Mapping[int, str], weights: Mapping[str, float]
) -> dict[str, float]:
    """Each label's weight, from its author's model weight (1.0 without evidence)."""
    return {labels[c.member]: weights.get(c.model, 1.0) for c in candidates if c.member in labels}


def hints(by_label: Mapping[str, float], has_evidence: bool) -> list[ReliabilityHint]:
    """Reliability hints by label, normalized to mean 1.0; none without evidence."""
    if not has_evidence or not by_label:
        return []
    mean = sum(by_label.values()) / len(by_label) or 1.0
    return [
        ReliabilityHint(label=label, weight=weight / mean, note=_note(weight / mean))
        for label, weight in sorted(by_label.items())
    ]


def _note(relative: float) -> str:
    if relative >= 1.25:
        return "more reliable than the others so far"
    if relative <= 0.75:
        return "less reliable than the others so far"
    return "about average so far"


def judge_input(
    prompt: str,
    mode: Literal["judge", "select"],
    candidates: list[LabeledCandidate],
    critiques: list[Critique],
    hint_list: list[ReliabilityHint],
    guidance: str = "",
    goal: bool = False,
) -> JudgeInput:
    """The judge's whole view: labels and texts, critics' reviews without critic names, hints."""
    reviews = [Review(label=r.label, problems=r.problems) for c in critiques for r in c.reviews]
    return JudgeInput(
        prompt=prompt,
        mode=mode,
        candidates=candidates,
        critiques=[r for r in reviews if r.problems],
        hints=hint_list,
        guidance=guidance,
        goal=goal,
    )


def best_record(by_label: Mapping[str, float]) -> str | None:
    """The label whose author has the best record (earliest label on ties)."""
    if not by_label:
        return None
    return min(by_label, key=lambda label: (-by_label[label], label))


def build_result(
    *,
    run_id: str,
    prompt: str,
    category: str,
    workflow: Workflow,
    candidates: list[Candidate],
    labels: Mapping[int, str],
    critiques: list[Critique],
    outcome: JudgeOutcome | None,
    weights_by_label: Mapping[str, float],
    latency_s: float,
    skipped: Mapping[int, str] | None = None,
    n_options: int | None = None,
) -> FusionResult:
    """Turn a cycle's state into its result, taking the degraded paths where needed."""
    ok = [c for c in candidates if c.ok]
    texts = {labels[c.member]: c.text for c in ok}
    extracted = {label: extract(text, workflow.extraction) for label, text in texts.items()}
    answer, path, analysis = "", _panel_path(len(ok), workflow.quorum), Analysis()
    goal = None
    scores: dict[str, float] = {}
    if path is None:
        if workflow.synthesis == "vote":
            answer, path = _vote(extracted, weights_by_label, texts, "vote", workflow, run_id)
        elif outcome is not None and outcome.verdict is not None and outcome.path is not None:
            answer, path = outcome.verdict.final_answer, outcome.path
            analysis = outcome.verdict.analysis
            goal = outcome.verdict.goal
            scores = {s.label: s.score for s in outcome.verdict.scores}
        else:
            answer, path = _vote(
                extracted, weights_by_label, texts, "vote_fallback", workflow, run_id
            )
    calls = [c.call for c in sorted(candidates, key=lambda c: c.member)]
    calls += [c.call for c in sorted(critiques, key=lambda c: c.index)]
    calls += outcome.calls if outcome else []
    costs = [c.cost_usd for c in calls]
    reports = [
        CandidateReport(
            label=labels.get(c.member),
            member=c.member,
            model=c.model,
            ok=c.ok,
            error=f"{c.failure.kind}: {c.failure.message}" if c.failure else None,
            text=c.text,
            score=scores.get(labels.get(c.member, "")),
            latency_s=c.call.latency_s,
            tokens=_tokens(c),
            cost_usd=c.call.cost_usd,
        )
        for c in sorted(candidates, key=lambda c: c.member)
    ]
    reports += [
        CandidateReport(
            label=None, member=i, model=workflow.panel[i].model, ok=False, error=f"skipped: {why}"
        )
        for i, why in (skipped or {}).items()
    ]
    reports.sort(key=lambda r: r.member)
    return FusionResult(
        run_id=run_id,
        prompt=prompt,
        category=category,
        workflow=workflow.name,
        answer=answer,
        synthesis_path=path,
        analysis=analysis,
        candidates=reports,
        critiques=sorted(critiques, key=lambda c: c.index),
        calls=calls,
        judge_model=outcome.judge_model if outcome else None,
        goal=goal,
        extracted=extracted,
        answer_extracted=extract(answer, workflow.extraction) if answer else None,
        n_options=n_options,
        label_weights=dict(weights_by_label),
        cost_usd=None if any(c is None for c in costs) else sum(c or 0.0 for c in costs),
        latency_s=latency_s,
    )


def _panel_path(n_ok: int, quorum: int) -> SynthesisPath | None:
    if n_ok == 0:
        return "all_panel_failed"
    if n_ok < quorum:
        return "quorum_failed"
    return None


def _vote(
    extracted: Mapping[str, str | None],
    weights: Mapping[str, float],
    texts: Mapping[str, str],
    path: SynthesisPath,
    workflow: Workflow,
    tie_key: str,
) -> tuple[str, SynthesisPath]:
    answer = plurality(extracted, weights, tie_key=tie_key)
    if answer is None:
        label = best_record(weights) or min(texts)
        return texts[label], "best_record"
    if workflow.extraction.kind == "exact":
        # Normalized text is only the key of the vote: answer with the heaviest supporter's text.
        supporters = {lb: weights.get(lb, 1.0) for lb, a in extracted.items() if a == answer}
        return texts[best_record(supporters) or min(supporters)], path
    return answer, path


def _tokens(candidate: Candidate) -> int | None:
    call = candidate.call
    if call.prompt_tokens is None or call.completion_tokens is None:
        return None
    return call.prompt_tokens + call.completion_tokens
