"""Evidence from live fusion: the events one cycle yields, and verdicts that arrive later.

Every model call becomes an ``answer`` or a ``failure`` event (critics and judges included);
each critic finding becomes a ``finding`` event and each judge score a ``judge`` event for the
model behind the label. Panel answers also carry peer agreement and the fused support of their
answer (see :func:`apex.evidence.policy.synthesis_events`), and, when the expected answer is known,
whether they were right: ground truth.
"""

from __future__ import annotations

from collections.abc import Mapping

from apex.evidence.aggregate import EvidenceEvent
from apex.evidence.policy import peer_agreement, vote_distribution
from apex.graph.extract import extract, extract_choice, extract_number, normalize_text
from apex.graph.types import FusionResult
from apex.workflow import ExtractConfig


def same_answer(extracted: str | None, expected: str, config: ExtractConfig) -> bool | None:
    """Whether an extracted answer matches the expected one (None when nothing was extracted)."""
    if extracted is None:
        return None
    wanted = extract(expected, config) or normalize_text(expected)
    return extracted == wanted


def fusion_events(
    result: FusionResult,
    config: ExtractConfig,
    *,
    expected: str | None = None,
    correct_by_label: Mapping[str, bool] | None = None,
) -> list[EvidenceEvent]:
    """The evidence of one cycle, in a stable order (the store keys events by position).

    ``expected`` is a ground-truth answer compared with each candidate's extracted answer;
    ``correct_by_label`` gives verdicts directly (a goal's verifier run on each candidate).
    """
    category = result.category
    label_model = {c.label: c.model for c in result.candidates if c.label}
    answers = {label: result.extracted.get(label) for label in label_model}
    agreement = peer_agreement(answers)
    support = vote_distribution(answers, result.label_weights)
    events: list[EvidenceEvent] = []
    for call in result.calls:
        if not call.ok and call.failure_kind is not None:
            events.append(
                EvidenceEvent(
                    model=call.model,
                    category=category,
                    kind="failure",
                    failure_kind=call.failure_kind,
                )
            )
            continue
        label = next(
            (c.label for c in result.candidates if c.member == call.member and c.label),
            None,
        )
        if call.role != "panel" or label is None:
            events.append(EvidenceEvent(model=call.model, category=category, kind="answer"))
            continue
        answer = answers.get(label)
        correct: bool | None = None
        if correct_by_label is not None and label in correct_by_label:
            correct = correct_by_label[label]
        elif expected is not None:
            correct = same_answer(answer, expected, config)
        events.append(
            EvidenceEvent(
                model=call.model,
                category=category,
                kind="answer",
                correct=correct,
                agreed=agreement.get(label),
                support=support.get(answer) if answer is not None else None,
            )
        )
    for critique in result.critiques:
        for review in critique.reviews:
            model = label_model.get(review.label)
            for problem in review.problems if model else []:
                events.append(
                    EvidenceEvent(
                        model=model or "",
                        category=category,
                        kind="finding",
                        finding_type=problem.type,
                        severity=problem.severity,
                    )
                )
    for cand in result.candidates:
        if cand.label and cand.score is not None:
            events.append(
                EvidenceEvent(model=cand.model, category=category, kind="judge", score=cand.score)
            )
    return events


def answer_forms(text: str) -> set[str]:
    """The ways an answer may have been extracted: as typed, a choice, a number, normalized."""
    forms = {text.strip(), text.strip().upper()}
    for form in (extract_choice(text), extract_number(text), normalize_text(text)):
        if form is not None:
            forms.add(form)
    return forms


def feedback_events(
    category: str,
    candidates: Mapping[str, tuple[str, str | None]],
    final: set[str],
    *,
    correct: bool | None = None,
    answer: str | None = None,
) -> list[EvidenceEvent]:
    """Ground truth given after a run: ``apex feedback RUN_ID --correct | --wrong [--answer X]``.

    ``candidates`` maps label -> (model, extracted answer); ``final`` holds the forms of the
    run's final answer. With ``answer`` every candidate is judged against it. With only
    ``correct``: candidates that gave the final answer share its verdict; when the final answer
    was right the others were wrong; when it was wrong the others are unknown (no event).
    """
    truth = answer_forms(answer) if answer is not None else None
    events: list[EvidenceEvent] = []
    for model, extracted in candidates.values():
        verdict: bool | None = None
        if extracted is not None and truth is not None:
            verdict = extracted in truth
        elif extracted is not None and correct is not None:
            verdict = correct if extracted in final else (False if correct else None)
        if verdict is not None:
            events.append(
                EvidenceEvent(model=model, category=category, kind="verdict", correct=verdict)
            )
    return events
