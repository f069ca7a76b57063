"""Evidence events and the per-(model, role, category) aggregates they are folded into.

These are the store's own row types. Every piece of evidence about a model (a verdict on one of
its answers, a call failure, a critic finding, a judge score) is an :class:`EvidenceEvent`, about
the model in one role: ``panel`` (its answers), ``critic`` or ``judge`` (its work in those
seats), so a model's failures as judge never bench its panel seat. Events are never re-read:
each is folded, in O(1), into the :class:`ModelAggregate` of its ``(model, role, category)`` and
into the model's global aggregate in that role (category ``"*"``). An aggregate holds only plain
numbers, so reading a weight costs the same after a million events as after none.
:func:`apply_event` is the one place the folding rule lives; every store calls it, and
:func:`record_keys` the one place that says which aggregates a reader needs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from apex.models.types import FailureKind
from apex.types import Role

GLOBAL_CATEGORY = "*"
"""Category name of a model's global aggregate, the fallback for sparse categories."""

AggKey = tuple[str, Role, str]
"""An aggregate's key: ``(model, role, category)``."""

EvidenceKind = Literal["answer", "verdict", "failure", "finding", "judge"]
"""What an event reports.

``answer``: a call produced an answer (a success), optionally with what is already known about it
(``correct``, ``agreed``, ``support``). ``verdict``: ground truth or agreement about an earlier
answer, arriving later; it does not count as a call. ``failure``: a call failed
(``failure_kind``). ``finding``: a critic finding on the model's answer. ``judge``: a judge score.
"""

FindingType = Literal["factual", "reasoning", "incomplete", "off_task", "unsafe", "format"]
"""What a critic found wrong with an answer."""

Severity = Literal["low", "medium", "high"]
"""How serious a critic finding is."""

SEVERITY_WEIGHT: dict[Severity, float] = {"low": 1.0 / 3.0, "medium": 2.0 / 3.0, "high": 1.0}
"""Weight of one finding of each severity in the decayed severity sum."""

DEFAULT_HALF_LIFE_EVENTS = 5000.0
"""Half-life of evidence, counted in the aggregate's own events (its verdicts, for ground truth).

Each event folded into an aggregate multiplies every decayed statistic by ``0.5 ** (1 / h)``.
With h = 5000 the effective sample is h / ln 2 ~ 7,200 events: an accuracy estimated from it has a
standard error under 0.6 points, yet a model whose behaviour changes (a new version behind the
same name) is re-learned within a few thousand of its own events. Counting in the model's own
events, not in wall time, means an idle model keeps its record and a busy one is not
over-smoothed. On the MMLU-Pro replay a half-life of 2,000, 5,000 or infinity changes accuracy by
under 0.2 points."""

DEFAULT_GT_LEARNING_RATE = 0.3
"""AdaGrad step of the global (``"*"``) discriminative weight per ground-truth verdict."""

DEFAULT_GT_CATEGORY_LEARNING_RATE = 0.15
"""AdaGrad step of a category's deviation from the global weight per ground-truth verdict."""


class FoldParams(BaseModel):
    """How events are folded into aggregates (the learning side of the policy)."""

    model_config = ConfigDict(frozen=True)

    half_life_events: float | None = Field(default=DEFAULT_HALF_LIFE_EVENTS, gt=0)
    """Half-life of every decayed statistic in the aggregate's own events; None: no decay."""
    gt_learning_rate: float = Field(default=DEFAULT_GT_LEARNING_RATE, ge=0)
    """AdaGrad step size of the global discriminative weight."""
    gt_category_learning_rate: float = Field(default=DEFAULT_GT_CATEGORY_LEARNING_RATE, ge=0)
    """AdaGrad step size of the per-category deviation."""

    @property
    def decay(self) -> float:
        """Factor applied to every decayed statistic at each event."""
        return _decay(self.half_life_events)


@functools.cache
def _decay(half_life_events: float | None) -> float:
    return 1.0 if half_life_events is None else float(0.5 ** (1.0 / half_life_events))


DEFAULT_FOLD = FoldParams()
"""The default folding parameters."""


class EvidenceEvent(BaseModel):
    """One piece of evidence about one model on one task category."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(min_length=1)
    """The model spec, ``provider:model`` (any non-empty name in replays)."""
    category: str = Field(min_length=1)
    """Task category; ``"*"`` when unknown (then only the global aggregate is updated)."""
    role: Role = "panel"
    """Which seat the evidence is about: panel answers, critic work or judge work."""
    kind: EvidenceKind
    """What the event reports; see :data:`EvidenceKind`."""
    correct: bool | None = None
    """Ground truth: was the model's answer right (None: not known)."""
    agreed: float | None = Field(default=None, ge=0.0, le=1.0)
    """Proxy: how far the answer agreed with its reference, in [0, 1] (None: no reference).

    1.0/0.0 (or True/False) against a single reference answer; the replay and
    :func:`apex.evidence.events.cycle_events` use the share of the other panel members
    that gave the same answer."""
    support: float | None = Field(default=None, ge=0.0, le=1.0)
    """Probability the fused vote gave to this model's answer when it was synthesized.

    Needed, with ``correct``, to learn the discriminative weight; without it a ground-truth
    verdict only updates the accuracy counts."""
    n_options: int | None = Field(default=None, ge=2)
    """Number of answer options of the question, when it has a fixed set."""
    peers: dict[str, bool] | None = None
    """Other panel models that answered the same question (those whose names sort after this
    one: each pair is kept once), and whether each gave the same answer: for dependence, who
    agrees more than their accuracies explain."""
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    """Judge score in [0, 1] (``judge`` events)."""
    failure_kind: FailureKind | None = None
    """How the call failed (``failure`` events)."""
    retries: int | None = Field(default=None, ge=1)
    """Attempts of the call that were retried (429, 5xx, connection) before it ended, on its
    ``answer`` or ``failure`` event: weak failure evidence, counted apart from failures (it moves
    no weight and neither advances nor resets the streak of failed calls)."""
    finding_type: FindingType | None = None
    """What the critic found (``finding`` events)."""
    severity: Severity | None = None
    """How serious the finding is (``finding`` events)."""

    @model_validator(mode="after")
    def _fields_match_kind(self) -> EvidenceEvent:
        if self.kind == "failure" and self.failure_kind is None:
            raise ValueError("a failure event needs failure_kind")
        if self.kind == "finding" and (self.finding_type is None or self.severity is None):
            raise ValueError("a finding event needs finding_type and severity")
        if self.kind == "judge" and self.score is None:
            raise ValueError("a judge event needs score")
        if self.kind == "verdict" and self.correct is None and self.agreed is None:
            raise ValueError("a verdict event needs correct or agreed")
        return self


class ModelAggregate(BaseModel):
    """Sufficient statistics of all evidence about one model in one category (or ``"*"``).

    Fields named as counts are decayed (float) unless stated; a SQL table mirrors them 1:1.
    """

    model_config = ConfigDict(frozen=True)

    model: str
    """The model spec."""
    role: Role = "panel"
    """The seat this record is about."""
    category: str
    """Task category, or ``"*"`` for the model's global aggregate."""
    events: int = 0
    """Lifetime number of events folded in (not decayed)."""
    answers: float = 0.0
    """Decayed count of answers produced (``answer`` events)."""
    calls: float = 0.0
    """Decayed count of calls (answers plus failures)."""
    failures: float = 0.0
    """Decayed count of failed calls."""
    failures_total: int = 0
    """Lifetime number of failed calls (not decayed)."""
    consecutive_failures: int = 0
    """Failures since the last successful call; reset to 0 by an ``answer`` event."""
    last_failure_kind: str | None = None
    """Kind of the most recent failure, if any."""
    retries: float = 0.0
    """Decayed count of retried attempts (429, 5xx, connection errors a call recovered from or
    ended in): weak failure evidence, shown beside the failures, read by no weight."""
    retries_total: int = 0
    """Lifetime number of retried attempts (not decayed)."""
    gt_n: float = 0.0
    """Decayed count of ground-truth verdicts."""
    gt_correct: float = 0.0
    """Decayed count of ground-truth verdicts that found the answer right."""
    gt_supported: float = 0.0
    """Decayed count of ground-truth verdicts that carried a ``support`` (learning steps)."""
    gt_weight: float = 0.0
    """Learned conditional-logit weight: offset from the prior (``"*"``) or deviation from the
    global weight (a category). Decays toward 0 with each verdict."""
    gt_sq_grad: float = 0.0
    """Decayed sum of squared gradients (AdaGrad normaliser of ``gt_weight`` steps)."""
    ds_n: float = 0.0
    """Decayed count of answers without ground truth that carried a ``support``."""
    ds_sum: float = 0.0
    """Decayed sum of their supports: the probability, under the vote, that each was right
    (the unsupervised, Dawid-Skene-style accuracy is ``ds_sum / ds_n``)."""
    pairs: dict[str, tuple[float, float, float, int]] = Field(default_factory=dict)
    """Global record only: per other model, (questions both answered, agreements, sum of
    1/(K-1), ``events`` when last updated), decayed lazily: read them with
    :func:`pair_stats`. Dependence beyond accuracy is measured from them."""
    agree_n: float = 0.0
    """Decayed count of agreement verdicts."""
    agree_sum: float = 0.0
    """Decayed sum of agreement values (mean = agree_sum / agree_n)."""
    judge_n: float = 0.0
    """Decayed count of judge scores."""
    judge_sum: float = 0.0
    """Decayed sum of judge scores (mean = judge_sum / judge_n)."""
    findings: float = 0.0
    """Decayed count of critic findings."""
    finding_severity: float = 0.0
    """Decayed sum of finding severities (low 1/3, medium 2/3, high 1)."""

    @classmethod
    def empty(cls, model: str, role: Role, category: str) -> ModelAggregate:
        """The aggregate of a model with no evidence yet."""
        return cls(model=model, role=role, category=category)

    @property
    def key(self) -> AggKey:
        """``(model, role, category)``."""
        return (self.model, self.role, self.category)

    @property
    def judge_mean(self) -> float | None:
        """Decayed mean judge score, or None before any judge event."""
        return self.judge_sum / self.judge_n if self.judge_n > 0 else None

    @property
    def accuracy(self) -> float | None:
        """Decayed ground-truth accuracy of answers, or None before any verdict."""
        return self.gt_correct / self.gt_n if self.gt_n > 0 else None


_DECAYED = (
    "answers",
    "calls",
    "failures",
    "retries",
    "ds_n",
    "ds_sum",
    "agree_n",
    "agree_sum",
    "judge_n",
    "judge_sum",
    "findings",
    "finding_severity",
)
_VERDICT_DECAYED = ("gt_n", "gt_correct", "gt_supported", "gt_weight", "gt_sq_grad")
"""The ground-truth statistics, decayed per verdict instead of per event: where truth is
sparse (one answer in ten verified) the learned weight would otherwise be forgotten between
verdicts faster than they can build it (on the MMLU-Pro replay with a tenth of the labels,
this is worth 0.2 to 0.3 points of accuracy on all 29 models, at every seed)."""


def apply_event(
    agg: ModelAggregate, event: EvidenceEvent, params: FoldParams = DEFAULT_FOLD
) -> ModelAggregate:
    """Fold one event into an aggregate: pure, O(1); returns the new aggregate.

    Every decayed statistic is first multiplied by ``params.decay``, then the event is added;
    the ground-truth ones only when the event carries a verdict (see ``_VERDICT_DECAYED``).
    A ground-truth verdict with a ``support`` takes one AdaGrad step on the conditional-logit
    log-likelihood of the gold answer: the gradient for this model's weight is
    ``correct - support`` (right more often than the fused vote expected: weight up).
    """
    decay = params.decay
    f: dict[str, Any] = agg.__dict__.copy()  # the new aggregate's fields
    for k in _DECAYED:
        f[k] *= decay
    if event.kind in ("answer", "verdict") and event.correct is not None:  # a verdict
        for k in _VERDICT_DECAYED:
            f[k] *= decay
    f["events"] += 1
    if event.kind == "answer":
        f["answers"] += 1.0
        f["calls"] += 1.0
        f["consecutive_failures"] = 0
    elif event.kind == "failure":
        f["calls"] += 1.0
        f["failures"] += 1.0
        f["failures_total"] += 1
        f["consecutive_failures"] += 1
        f["last_failure_kind"] = event.failure_kind
    if event.retries and event.kind in ("answer", "failure"):
        f["retries"] += event.retries
        f["retries_total"] += event.retries
    if event.kind == "finding" and event.severity is not None:
        f["findings"] += 1.0
        f["finding_severity"] += SEVERITY_WEIGHT[event.severity]
    elif event.kind == "judge" and event.score is not None:
        f["judge_n"] += 1.0
        f["judge_sum"] += event.score
    is_global = agg.category == GLOBAL_CATEGORY
    if event.kind in ("answer", "verdict"):
        _fold_verdict(f, event, params, is_global=is_global)
    if is_global and event.peers:
        f["pairs"] = _fold_pairs(agg, event, params)
    return _with_fields(agg, f)


_set = object.__setattr__


def _with_fields(agg: ModelAggregate, fields: dict[str, Any]) -> ModelAggregate:
    """An aggregate of ``agg``'s type holding ``fields`` (all of them), as ``model_copy`` would
    build it but without its generic bookkeeping: this is the hottest line of a replay, and an
    aggregate has no extra or private attributes."""
    new = type(agg).__new__(type(agg))
    _set(new, "__dict__", fields)
    _set(new, "__pydantic_extra__", None)
    _set(new, "__pydantic_fields_set__", set(fields))
    _set(new, "__pydantic_private__", None)
    return new


def pair_stats(
    agg: ModelAggregate, other: str, params: FoldParams = DEFAULT_FOLD
) -> tuple[float, float, float]:
    """``(questions, agreements, sum of 1/(K-1))`` shared with ``other``, decayed to now.

    A pair is kept in the record of the model whose name sorts first (see ``peers``).
    """
    found = agg.pairs.get(other)
    if found is None:
        return (0.0, 0.0, 0.0)
    n, agreed, chance, stamp = found
    factor = params.decay ** (agg.events - stamp)
    return (n * factor, agreed * factor, chance * factor)


def _fold_pairs(
    agg: ModelAggregate, event: EvidenceEvent, params: FoldParams
) -> dict[str, tuple[float, float, float, int]]:
    """Add this question's agreements with its peers (only their pairs change)."""
    out = dict(agg.pairs)
    chance = 1.0 / (event.n_options - 1) if event.n_options else 0.0
    decay, now = params.decay, agg.events + 1
    for peer, agreed in (event.peers or {}).items():
        found = out.get(peer)
        if found is None:
            out[peer] = (1.0, float(agreed), chance, now)
            continue
        n, a, c, stamp = found
        factor = decay if stamp == now - 1 else decay ** (now - stamp)  # to now, this one in
        out[peer] = (n * factor + 1.0, a * factor + float(agreed), c * factor + chance, now)
    return out


def _fold_verdict(
    f: dict[str, Any], event: EvidenceEvent, params: FoldParams, *, is_global: bool
) -> None:
    """Add an event's ground-truth and agreement parts to the decayed statistics ``f``."""
    if event.agreed is not None:
        f["agree_n"] += 1.0
        f["agree_sum"] += event.agreed
    if event.correct is None:
        if event.support is not None and event.kind == "answer":  # no truth: the vote's belief
            f["ds_n"] += 1.0
            f["ds_sum"] += event.support
        return
    f["gt_n"] += 1.0
    f["gt_correct"] += float(event.correct)
    if event.support is None:
        return
    grad = float(event.correct) - event.support
    f["gt_supported"] += 1.0
    f["gt_sq_grad"] += grad * grad
    if f["gt_sq_grad"] > 0.0:
        rate = params.gt_learning_rate if is_global else params.gt_category_learning_rate
        f["gt_weight"] += rate * grad / math.sqrt(f["gt_sq_grad"])


def aggregate_keys(event: EvidenceEvent) -> tuple[AggKey, ...]:
    """The aggregates an event is folded into: its category's and ``"*"``, in its role."""
    if event.category == GLOBAL_CATEGORY:
        return ((event.model, event.role, GLOBAL_CATEGORY),)
    return ((event.model, event.role, event.category), (event.model, event.role, GLOBAL_CATEGORY))


def record_keys(models: Iterable[str], category: str, role: Role = "panel") -> list[AggKey]:
    """The aggregates a reader needs for ``models`` in ``category``: each one's category record
    and its global record, in ``role`` (the weights and panel selection read the panel's)."""
    cats = (category,) if category == GLOBAL_CATEGORY else (category, GLOBAL_CATEGORY)
    return [(m, role, c) for m in dict.fromkeys(models) for c in cats]


class AggregateReader(Protocol):
    """Where aggregates are read from: in memory, SQLite or PostgreSQL."""

    def get_keys(self, keys: Iterable[AggKey]) -> Mapping[AggKey, ModelAggregate]:
        """Aggregates by key, in one read; an empty aggregate where there is no evidence."""
        ...


class AggregateStore(AggregateReader, Protocol):
    """Where aggregates live; every store folds with :func:`apply_event`."""

    def apply(self, events: Iterable[EvidenceEvent]) -> None:
        """Fold a batch of events into their category and global aggregates, in order."""
        ...
