"""Unit tests of evidence folding, decay, fallback, weights and the weighted vote."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from apex.evidence import DEFAULT_POLICY, Truth, cycle_events, model_weight, panel_weights
from apex.evidence.replay import recorded_cycle
from apex.store import (
    DEFAULT_FOLD,
    GLOBAL_CATEGORY,
    AggregateStore,
    EvidenceEvent,
    FoldParams,
    InMemoryAggregates,
    ModelAggregate,
    apply_event,
)
from apex.vote import vote_distribution

M = "p:model"


def fold(events: list[EvidenceEvent], params: FoldParams = DEFAULT_FOLD) -> InMemoryAggregates:
    store = InMemoryAggregates(params)
    store.apply(events)
    return store


def verdict(correct: bool, support: float | None = 0.5, cat: str = "math") -> EvidenceEvent:
    return EvidenceEvent(model=M, category=cat, kind="verdict", correct=correct, support=support)


def weight(store: InMemoryAggregates, cat: str = "math", n_options: int | None = 10) -> float:
    return model_weight(store.get(M, cat), store.get(M, GLOBAL_CATEGORY), n_options)


def test_apply_event_is_pure_and_takes_one_adagrad_step() -> None:
    agg = ModelAggregate.empty(M, "panel", GLOBAL_CATEGORY)
    ev = EvidenceEvent(
        model=M, category="math", kind="answer", correct=True, agreed=1.0, support=0.4
    )
    new = apply_event(agg, ev)
    assert agg.events == 0 and agg.gt_n == 0.0  # the input is untouched
    assert new.events == 1 and new.answers == 1.0 and new.calls == 1.0
    assert new.gt_n == 1.0 and new.gt_correct == 1.0 and new.gt_supported == 1.0
    assert new.agree_n == 1.0 and new.agree_sum == 1.0
    # first AdaGrad step: rate * g / |g| = the global learning rate
    assert new.gt_weight == pytest.approx(DEFAULT_FOLD.gt_learning_rate)
    cat = apply_event(ModelAggregate.empty(M, "panel", "math"), ev)
    assert cat.gt_weight == pytest.approx(DEFAULT_FOLD.gt_category_learning_rate)
    wrong = apply_event(agg, ev.model_copy(update={"correct": False}))
    assert wrong.gt_weight == pytest.approx(-DEFAULT_FOLD.gt_learning_rate)


def test_decay_halves_evidence_after_half_life_events() -> None:
    params = FoldParams(half_life_events=10)
    judge = EvidenceEvent(model=M, category="math", kind="judge", score=1.0)
    store = fold([judge, *[verdict(False)] * 10], params)
    glob = store.get(M, GLOBAL_CATEGORY)
    assert glob.judge_n == pytest.approx(0.5) and glob.judge_mean == pytest.approx(1.0)
    assert glob.events == 11  # the lifetime count does not decay
    undecayed = fold([judge, *[verdict(False)] * 10], FoldParams(half_life_events=None))
    assert undecayed.get(M, GLOBAL_CATEGORY).judge_n == 1.0


def test_ground_truth_decays_per_verdict_not_per_event() -> None:
    params = FoldParams(half_life_events=10)
    judge = EvidenceEvent(model=M, category="math", kind="judge", score=1.0)
    unverified = EvidenceEvent(model=M, category="math", kind="answer", agreed=0.5, support=0.5)
    # ten events without truth between verdicts: what the first verdict taught is kept whole
    first = fold([verdict(True), *[judge] * 5, *[unverified] * 5], params)
    glob = first.get(M, GLOBAL_CATEGORY)
    assert glob.gt_n == 1.0 and glob.gt_correct == 1.0
    assert glob.gt_weight == pytest.approx(DEFAULT_FOLD.gt_learning_rate)
    assert glob.agree_n < 5.0  # the other statistics still decay per event
    # ten later verdicts halve it: truth that arrives rarely is forgotten as slowly as the rest
    later = fold([verdict(True), *[judge] * 5, *[verdict(False)] * 10], params)
    assert later.get(M, GLOBAL_CATEGORY).gt_correct == pytest.approx(0.5)


def test_failures_findings_and_consecutive_failures() -> None:
    fail = EvidenceEvent(model=M, category="law", kind="failure", failure_kind="timeout")
    finding = EvidenceEvent(
        model=M, category="law", kind="finding", finding_type="factual", severity="high"
    )
    store = fold([fail, fail, finding, fail])
    agg = store.get(M, "law")
    assert agg.consecutive_failures == 3 and agg.failures_total == 3
    assert agg.last_failure_kind == "timeout"
    assert agg.findings == pytest.approx(1.0, rel=1e-3)
    assert agg.finding_severity == pytest.approx(1.0, rel=1e-3)
    store.apply([verdict(True, cat="law")])  # a late verdict is not a successful call
    assert store.get(M, "law").consecutive_failures == 3
    store.apply([EvidenceEvent(model=M, category="law", kind="answer")])
    assert store.get(M, "law").consecutive_failures == 0
    assert store.get(M, GLOBAL_CATEGORY).consecutive_failures == 0
    assert store.get(M, "law").calls == pytest.approx(4.0, rel=1e-3)


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "failure"},
        {"kind": "finding", "finding_type": "format"},
        {"kind": "judge"},
        {"kind": "judge", "score": 1.5},
        {"kind": "verdict"},
        {"kind": "answer", "support": -0.1},
        {"kind": "answer", "agreed": 2.0},
        {"kind": "failure", "failure_kind": "gremlins"},
    ],
)
def test_invalid_events_are_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        EvidenceEvent.model_validate({"model": M, "category": "math", **fields})


def test_store_folds_into_category_and_global() -> None:
    store = fold([verdict(True, cat="math"), verdict(False, cat="law")])
    assert store.get(M, "math").events == 1
    assert store.get(M, "law").events == 1
    assert store.get(M, GLOBAL_CATEGORY).events == 2
    assert store.get("other", "math") == ModelAggregate.empty("other", "panel", "math")
    store.apply([EvidenceEvent(model=M, category=GLOBAL_CATEGORY, kind="judge", score=0.5)])
    assert store.get(M, GLOBAL_CATEGORY).events == 3
    assert len(store) == 3


def test_weight_starts_at_prior_and_learns_from_ground_truth() -> None:
    assert weight(InMemoryAggregates()) == DEFAULT_POLICY.prior_weight
    good = fold([verdict(True, 0.5) for _ in range(50)])
    bad = fold([verdict(False, 0.5) for _ in range(50)])
    assert weight(good) > 2.0
    assert weight(bad) == DEFAULT_POLICY.min_weight
    # right exactly as often as the fused vote expected: no change
    calibrated = fold([verdict(i % 2 == 0, 0.5) for i in range(50)])
    assert weight(calibrated) == pytest.approx(1.0, abs=0.3)


def test_sparse_category_falls_back_to_global_record() -> None:
    store = fold([verdict(True, 0.3, cat=c) for c in ("math", "law", "physics") for _ in range(30)])
    glob = store.get(M, GLOBAL_CATEGORY)
    fresh = weight(store, cat="history")  # no evidence in this category
    assert fresh == pytest.approx(DEFAULT_POLICY.prior_weight + glob.gt_weight)
    assert fresh > 2.0
    assert weight(store, cat="math") > fresh  # its own evidence adds a category part


def test_ground_truth_outweighs_agreement() -> None:
    agree = [
        EvidenceEvent(model=M, category="math", kind="verdict", agreed=0.9) for _ in range(100)
    ]
    assert weight(fold(agree)) > 2.0  # agreement alone tilts the weight up
    low = [EvidenceEvent(model=M, category="math", kind="verdict", agreed=0.5)] * 100
    assert weight(fold(low)) == DEFAULT_POLICY.prior_weight  # below threshold: no tilt
    wrong = [verdict(False, 0.5) for _ in range(100)]
    assert weight(fold(agree + wrong)) < DEFAULT_POLICY.prior_weight


def test_ground_truth_without_support_uses_option_corrected_accuracy() -> None:
    store = fold([verdict(i % 5 != 0, support=None) for i in range(200)])  # 80% right
    assert store.get(M, GLOBAL_CATEGORY).gt_weight == 0.0
    w10 = weight(store, n_options=10)
    assert w10 == pytest.approx(math.log(0.8 * 9 / 0.2), abs=0.1)
    assert weight(store, n_options=4) < w10  # fewer options: agreement is cheaper
    weak = fold([verdict(i % 10 == 0, support=None) for i in range(200)])  # 10% on 10 options
    assert weight(weak, n_options=10) == pytest.approx(0.0, abs=0.05)


def test_judge_score_has_small_influence() -> None:
    judged = [EvidenceEvent(model=M, category="math", kind="judge", score=1.0)] * 200
    w = weight(fold(judged))
    assert 1.0 < w <= 1.0 + DEFAULT_POLICY.judge_gain


def test_recorded_cycle_events_and_panel_weights() -> None:
    answers = {"a": "X", "b": "X", "c": "Y", "d": "Z", "e": None}
    weights = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0, "e": 1.0}
    events = cycle_events(recorded_cycle(answers, weights, "math", 4), Truth(expected="Y"))
    assert [e.model for e in events] == ["a", "b", "c", "d", "e"]
    by = {e.model: e for e in events}
    assert by["c"].correct is True and by["a"].correct is False
    assert by["e"].correct is None and by["e"].kind == "answer"  # a call with no choice in it
    assert by["a"].agreed == pytest.approx((1 / 3 - 1 / 4) / (3 / 4))  # corrected for chance
    dist = vote_distribution(answers, weights, 4)
    assert by["c"].support == pytest.approx(dist["Y"])
    silent = cycle_events(recorded_cycle({"a": "X", "b": "Y"}, {}, "math", 4), later=True)
    assert silent == []  # nothing known: no verdict
    store = InMemoryAggregates()
    store.apply(events)
    w = panel_weights(store, ["a", "c"], "math", 4)
    assert w["c"] > w["a"]


def test_decay_lets_a_changed_model_be_relearned() -> None:
    def events_to_fall_below_prior(params: FoldParams) -> int:
        store = fold([verdict(True, 0.5) for _ in range(1000)], params)
        for n in range(1, 3001):
            store.apply([verdict(False, 0.5)])
            if weight(store) < DEFAULT_POLICY.prior_weight:
                return n
        return 10**9

    fast = events_to_fall_below_prior(FoldParams(half_life_events=100))
    slow = events_to_fall_below_prior(FoldParams(half_life_events=None))
    assert fast < 300 < slow


def test_in_memory_store_satisfies_the_protocol() -> None:
    store: AggregateStore = InMemoryAggregates()
    store.apply([verdict(True)])
    assert store.get(M, "math").gt_correct == 1.0


def test_the_learned_weight_has_half_the_say_after_unsupervised_handover_verdicts() -> None:
    handover = DEFAULT_POLICY.unsupervised_handover
    n = int(handover)
    assert n == handover  # the verdicts below number exactly the handover
    store = InMemoryAggregates()
    for model, right in (("a", 0.8), ("b", 0.3)):
        store.apply(
            EvidenceEvent(
                model=model, category="math", kind="verdict", correct=i < right * n, support=0.5
            )
            for i in range(n)
        )

    def weights(h: float) -> dict[str, float]:
        policy = DEFAULT_POLICY.model_copy(update={"unsupervised_handover": h})
        return panel_weights(store, ["a", "b"], "math", 4, policy)

    learned, from_votes, blended = weights(1e-9), weights(1e9), weights(handover)
    assert learned["a"] != pytest.approx(from_votes["a"])  # the two estimates differ here
    for m in ("a", "b"):
        verdicts = store.get(m, GLOBAL_CATEGORY).gt_n  # decayed: a hair under n
        share = verdicts / (verdicts + handover)
        assert share == pytest.approx(0.5, abs=1e-3)
        assert blended[m] == pytest.approx(share * learned[m] + (1 - share) * from_votes[m])
