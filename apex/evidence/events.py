"""The evidence a cycle yields: one function for live fusion, goals, feedback and replay.

:func:`cycle_events` turns a :class:`CycleRecord` (what the evidence needs to know of a finished
cycle: who answered what, with which weight, which calls failed, what the critics and the judge
said) and, when known, the :class:`Truth` about it, into evidence events. ``apex fuse``, its
``--batch``, ``apex.fuse``, goal cycles, ``apex feedback`` and ``apex replay`` all build a record
and call it, so the weights replay certifies are the weights live fusion learns.

Events are about a model in one role. Panel answers carry peer agreement, the fused ``support``
of their answer (the vote distribution under the weights the vote used) and, with the truth,
whether they were right. Every call's success or failure counts for the role it was made in, so
a judge's schema failures never bench its model's panel seat and a critic's success never resets
a failing panelist's streak. Critic findings and judge scores are about the panel answer they
judge. With the truth, the judge's own record learns whether its final answer was right. A call
that needed retries (429, 5xx, connection errors it recovered from, or ended in) carries their
number on its own event: weak failure evidence, kept apart from failures and from the weights.
"""

from __future__ import annotations

from bisect import bisect_right
from operator import itemgetter

from pydantic import BaseModel, Field

from apex.models.types import FailureKind
from apex.store.aggregate import EvidenceEvent, FindingType, Severity
from apex.types import Role
from apex.vote import peer_agreement, same_answer, vote_distribution
from apex.workflow import ExtractConfig

CLOSED_KINDS = frozenset({"choice", "number"})
"""Extraction kinds with one right answer: a different answer is a wrong one."""


class Finding(BaseModel):
    """A critic's finding on a panel answer."""

    type: FindingType
    """What is wrong."""
    severity: Severity
    """How bad."""


class PanelVote(BaseModel):
    """A panel member's answer as evidence sees it."""

    label: str
    """Unique within the cycle: the candidate's label (a model's name in a replay)."""
    model: str
    """Who answered."""
    answer: str | None = None
    """The comparable answer extracted from it; None abstains."""
    weight: float = 1.0
    """The weight its vote had in this cycle."""
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    """The judge's score of it, when judged."""
    findings: list[Finding] = Field(default_factory=list)
    """The critics' findings on it."""


class CallOutcome(BaseModel):
    """One model call of the cycle: who, in which role, and how it ended."""

    role: Role
    """Which seat made it."""
    model: str
    """The model."""
    ok: bool
    """Whether it produced a usable answer."""
    failure_kind: FailureKind | None = None
    """How it failed."""
    label: str | None = None
    """Panel calls: the label of the answer it produced."""
    retries: int = Field(default=0, ge=0)
    """Attempts retried before it ended (429, 5xx, connection): weak failure evidence."""


class CycleRecord(BaseModel):
    """What the evidence needs to know of one finished cycle (stored with the run)."""

    category: str
    """Task category."""
    n_options: int | None = None
    """The question's number of options, when fixed (corrects agreement for chance)."""
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    """How answers were made comparable (to compare them with the truth)."""
    calls: list[CallOutcome] = Field(default_factory=list)
    """Every call, in call order."""
    votes: list[PanelVote] = Field(default_factory=list)
    """Every answering panel member, in panel order."""
    final: str | None = None
    """The final answer, extracted the same way as the votes."""
    judge_model: str | None = None
    """The judge whose verdict gave the final answer (None for vote paths)."""


class Truth(BaseModel):
    """What is known to be right about a cycle; each part optional."""

    expected: str | None = None
    """The right answer: every vote, and the final answer, are compared with it."""
    final_correct: bool | None = None
    """A verdict on the final answer itself (``apex feedback --correct/--wrong``, a goal's
    verifier); votes that gave the final answer share it."""
    by_label: dict[str, bool] = Field(default_factory=dict)
    """Verdicts on single votes by label (a goal's verifier run on each candidate)."""

    @property
    def known(self) -> bool:
        """Whether anything is known."""
        return self.expected is not None or self.final_correct is not None or bool(self.by_label)


def vote_verdict(vote: PanelVote, record: CycleRecord, truth: Truth) -> bool | None:
    """Whether ``vote`` was right, or None when the truth cannot say."""
    if vote.label in truth.by_label:
        return truth.by_label[vote.label]
    if truth.expected is not None:
        return same_answer(vote.answer, truth.expected, record.extract)
    if truth.final_correct is None or vote.answer is None or record.final is None:
        return None
    if vote.answer == record.final:
        return truth.final_correct
    # Another answer than a right final one is wrong only where there is one right answer.
    return False if truth.final_correct and record.extract.kind in CLOSED_KINDS else None


def final_verdict(record: CycleRecord, truth: Truth) -> bool | None:
    """Whether the final answer was right, or None when the truth cannot say."""
    if truth.final_correct is not None:
        return truth.final_correct
    if truth.expected is not None:
        return same_answer(record.final, truth.expected, record.extract)
    return None


def cycle_events(
    record: CycleRecord, truth: Truth | None = None, *, later: bool = False
) -> list[EvidenceEvent]:
    """The evidence of one cycle, in a stable order (the store keys events by position).

    ``later`` is for truth that arrives after the cycle was recorded (feedback): only the
    verdicts are emitted, as ``verdict`` events, since the calls and agreement were counted then.
    """
    truth = truth or Truth()
    cat, k = record.category, record.n_options
    answers = {v.label: v.answer for v in record.votes}
    weights = {v.label: v.weight for v in record.votes}
    agreement = {} if later else peer_agreement(answers, k)
    support = vote_distribution(answers, weights, k)
    votes = {v.label: v for v in record.votes}
    answered = sorted(
        ((v.model, v.answer) for v in record.votes if v.answer is not None), key=itemgetter(0)
    )
    names = [model for model, _ in answered]
    events: list[EvidenceEvent] = []

    def vote_event(vote: PanelVote, retries: int | None = None) -> EvidenceEvent | None:
        correct = vote_verdict(vote, record, truth)
        agreed = agreement.get(vote.label)
        if later and correct is None:
            return None
        peers = None
        if not later and vote.answer is not None:  # each pair once, in the first name's record
            after = answered[bisect_right(names, vote.model) :]  # the names after this one
            peers = {model: answer == vote.answer for model, answer in after}
        return EvidenceEvent(
            model=vote.model,
            category=cat,
            kind="verdict" if later else "answer",
            correct=correct,
            agreed=agreed,
            support=support.get(vote.answer) if vote.answer is not None else None,
            n_options=k,
            peers=peers or None,
            retries=retries,
        )

    if later:
        events += [e for v in record.votes if (e := vote_event(v)) is not None]
    else:
        for call in record.calls:
            retries = call.retries or None  # weak failure evidence on the call's own event
            if not call.ok and call.failure_kind == "bad_request":
                continue  # the caller's request was refused: nothing about the model
            if not call.ok:
                kind = call.failure_kind or "malformed_response"
                events.append(
                    EvidenceEvent(
                        model=call.model, category=cat, role=call.role, kind="failure",
                        failure_kind=kind, retries=retries,
                    )
                )  # fmt: skip
            elif call.role == "panel" and call.label in votes:
                event = vote_event(votes[call.label], retries)
                events += [event] if event is not None else []
            else:
                events.append(
                    EvidenceEvent(
                        model=call.model, category=cat, role=call.role, kind="answer",
                        retries=retries,
                    )
                )  # fmt: skip
        for vote in record.votes:
            events += [
                EvidenceEvent(
                    model=vote.model, category=cat, kind="finding",
                    finding_type=f.type, severity=f.severity,
                )
                for f in vote.findings
            ]  # fmt: skip
        events += [
            EvidenceEvent(model=v.model, category=cat, kind="judge", score=v.score)
            for v in record.votes
            if v.score is not None
        ]
    judged = final_verdict(record, truth) if record.judge_model else None
    if record.judge_model and judged is not None:
        events.append(
            EvidenceEvent(
                model=record.judge_model, category=cat, role="judge", kind="verdict",
                correct=judged,
            )
        )  # fmt: skip
    return events
