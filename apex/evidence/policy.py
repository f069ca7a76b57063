"""The evidence-weighting policy: how a model's record becomes the weight of its vote.

How a panel's answers are fused
-------------------------------
Each panel model's answer is one vote; the fused answer is the weighted plurality
(:func:`apex.vote.plurality`): the answer whose voters' weights sum highest. Exact ties are
broken by a hash of the question key and the answer, so a tie is settled the same way every
time, but no letter or model is favoured across questions. A model that failed or abstained has
no vote.

Where a weight comes from
-------------------------
A weight is read from two aggregates of the model's panel record: its record in the task's
category and its global record (category ``"*"``; :func:`~apex.store.aggregate.record_keys`).
Evidence is of two strengths, kept apart in the aggregate and combined here.

1. Ground truth (a verified right/wrong verdict) drives a *learned, discriminative* weight. The
   weights are those of a conditional-logit model of the gold answer given the votes
   (P(answer) proportional to exp of the summed weights of its voters, over all options). Each
   verdict takes one AdaGrad step: the model's weight moves by ``correct - support``, where
   ``support`` is the probability the fused vote gave to the model's answer. A model is pushed up
   when it is right more often than the panel already believed, and down when it only echoes
   the others. This is what makes the policy robust to mixed panels: counting accuracy alone
   (naive Bayes log-odds) treats ten correlated weak models as ten independent witnesses and
   lets them outvote the best model; the discriminative weight learns that their agreement adds
   little. The weight is the prior weight (1, i.e. plain majority before any evidence) plus a
   global part plus a category part; the category part starts at 0 and moves slowly, so a sparse
   category falls back on the model's global record (hierarchical shrinkage).
   Ground-truth verdicts without a ``support`` (gold arriving where the fused distribution was not
   kept) still count: for that fraction of the evidence the weight is the accuracy log-odds
   corrected for the number of options, log(p (K - 1) / (1 - p)), clipped at 0, with the
   category accuracy shrunk toward the global one.

2. Agreement and judge scores are weak evidence: they tilt the weight, and the tilt fades as
   ground truth accumulates (half of it is gone after ``gt_handover_events`` verdicts). A model's
   agreement on a question is the share of the *other* panel members that gave the same answer
   (agreement with a random peer), corrected for chance when the number of options K is known:
   (share - 1/K) / (1 - 1/K). This reference is symmetric: it never includes the model's
   own vote or the fused answer, so the weights cannot feed back into their own evidence
   (self-training on the fused answer drifts, and can lock onto a weak model), and, unlike
   agreement with the plurality of the others, it does not hold the best model to the weakest
   reference. It is not recorded when fewer than three peers answered: with one or two, it
   measures how alike two particular models are more than how accurate they are. A model earns
   extra weight only where it agrees with its peers clearly more often than not (rate above
   ``agreement_threshold``, 0.55 above chance, about 0.6 of peers on ten options; the category
   rate is shrunk toward the global one); below, it keeps the prior weight. Agreement well above
   one half means the model and its peers are mostly right; below it, agreement mostly measures
   shared mistakes (a strong model among weak, correlated ones agrees with them least), so the
   policy does not act on it and stays a plain majority vote. The margin over one half is for
   correlated errors: models of one family agree on wrong answers far more often than chance,
   and at one half such a cluster tilted ties against a stronger outsider (0.1 to 0.3 points
   below majority on MMLU-Pro panels with one dominant model); with the margin it did not. The
   judge's mean score moves the weight by at most ``judge_gain``.

Other evidence (call failures, critic findings) is recorded in the same aggregates (failure rate,
consecutive failures, decayed severity) for panel selection and reporting; it does not move vote
weights, since a failed call already casts no vote and findings are not yet calibrated.

All evidence decays with a half-life counted in the model's own events, ground truth in its
verdicts (see :data:`apex.store.aggregate.DEFAULT_HALF_LIFE_EVENTS`), so a model that changes
is re-learned and truth that arrives rarely is not forgotten between verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field

from apex.store.aggregate import (
    GLOBAL_CATEGORY,
    AggKey,
    AggregateReader,
    ModelAggregate,
    pair_stats,
    record_keys,
)

DEFAULT_PRIOR_WEIGHT = 1.0
"""Weight of a model with no evidence: equal weights make the vote a plain majority."""
DEFAULT_MIN_WEIGHT = 0.0
"""Lowest weight: a vote can be ignored but never counts against its answer."""
DEFAULT_MAX_WEIGHT = 10.0
"""Highest weight: a safety cap on the learned weight."""
DEFAULT_SHRINKAGE_EVENTS = 20.0
"""Pseudo-events pulling a category's rates toward the global rate (and the global toward the
prior): a category with n events trusts itself n / (n + 20)."""
DEFAULT_GT_HANDOVER_EVENTS = 20.0
"""Ground-truth verdicts after which agreement and judge evidence keep half their influence."""
DEFAULT_AGREEMENT_THRESHOLD = 0.55
"""Chance-corrected peer-agreement rate above which a model earns extra weight (about 0.6 of
peers agreeing on ten options; the margin over one half is for correlated errors)."""
DEFAULT_AGREEMENT_GAIN = 6.0
"""Extra weight per unit of agreement log-odds above the threshold."""
DEFAULT_JUDGE_GAIN = 0.5
"""Largest weight change from the judge's mean score (score 1: +gain, score 0: -gain)."""
DEFAULT_UNSUPERVISED_HANDOVER = 10.0
"""Ground-truth verdicts after which the learned weight has half the say over the weight
estimated from the votes alone."""
DEFAULT_DEPENDENCE_THRESHOLD = 0.6
"""Excess agreement (beyond what two models' accuracies explain, 0..1) below which a pair
counts as independent: models of one family share some mistakes; copies and blocs share most."""
DEFAULT_DEPENDENCE_EVENTS = 20.0
"""Shared questions after which a pair's measured dependence counts half."""
DEFAULT_UNSUPERVISED_MIN_ANSWERS = 200.0
"""Answers a model must have on record before the votes' beliefs count in its accuracy (its
verdicts count at once): before that, a plain majority is the safer choice."""
DEFAULT_FREE_OPTIONS = 10
"""Options assumed for free-form answers in the chance correction of the unsupervised weight."""


class WeightPolicy(BaseModel):
    """Parameters of the weighting policy (see the module docstring for what each does)."""

    model_config = ConfigDict(frozen=True)

    prior_weight: float = Field(default=DEFAULT_PRIOR_WEIGHT, ge=0)
    """Weight of a model with no evidence."""
    min_weight: float = Field(default=DEFAULT_MIN_WEIGHT, ge=0)
    """Lowest weight returned."""
    max_weight: float = Field(default=DEFAULT_MAX_WEIGHT, gt=0)
    """Highest weight returned."""
    shrinkage_events: float = Field(default=DEFAULT_SHRINKAGE_EVENTS, gt=0)
    """Pseudo-events of category-to-global (and global-to-prior) shrinkage."""
    gt_handover_events: float = Field(default=DEFAULT_GT_HANDOVER_EVENTS, gt=0)
    """Ground-truth verdicts after which weak evidence keeps half its influence."""
    agreement_threshold: float = Field(default=DEFAULT_AGREEMENT_THRESHOLD, gt=0, lt=1)
    """Chance-corrected peer-agreement rate above which agreement earns extra weight."""
    agreement_gain: float = Field(default=DEFAULT_AGREEMENT_GAIN, ge=0)
    """Extra weight per unit of agreement log-odds above the threshold."""
    judge_gain: float = Field(default=DEFAULT_JUDGE_GAIN, ge=0)
    """Largest weight change from the judge's mean score."""
    unsupervised_handover: float = Field(default=DEFAULT_UNSUPERVISED_HANDOVER, gt=0)
    """Ground-truth verdicts after which the learned weight has half the say."""
    dependence_threshold: float = Field(default=DEFAULT_DEPENDENCE_THRESHOLD, ge=0, lt=1)
    """Excess agreement below which a pair counts as independent."""
    dependence_events: float = Field(default=DEFAULT_DEPENDENCE_EVENTS, gt=0)
    """Shared questions after which a pair's dependence counts half."""
    unsupervised_min_answers: float = Field(default=DEFAULT_UNSUPERVISED_MIN_ANSWERS, ge=0)
    """Answers on record before the votes' beliefs count in a model's accuracy."""


DEFAULT_POLICY = WeightPolicy()
"""The default policy."""


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(p / (1.0 - p))


def _shrunk_rate(
    cat_sum: float,
    cat_n: float,
    glob_sum: float,
    glob_n: float,
    prior: float,
    s: float,
    global_prior: float | None = None,
) -> float:
    """Category rate shrunk toward the global rate, itself shrunk toward ``prior`` (with
    ``global_prior`` pseudo-events, default ``s``)."""
    g = s if global_prior is None else global_prior
    glob = (glob_sum + g * prior) / (glob_n + g)
    return (cat_sum + s * glob) / (cat_n + s)


def model_weight(
    cat_agg: ModelAggregate,
    global_agg: ModelAggregate,
    n_options: int | None = None,
    policy: WeightPolicy = DEFAULT_POLICY,
) -> float:
    """The vote weight of a model on a question of ``cat_agg``'s category.

    ``n_options`` is the question's number of options (None for free-form answers, read as 2);
    it only matters for ground truth that came without a fused ``support``.
    """
    s = policy.shrinkage_events
    learned = policy.prior_weight + global_agg.gt_weight
    if cat_agg.category != GLOBAL_CATEGORY:
        learned += cat_agg.gt_weight
    weight = learned
    if global_agg.gt_n > 0.0:
        unsupported = max(0.0, global_agg.gt_n - global_agg.gt_supported) / global_agg.gt_n
        if unsupported > 0.0:
            acc = _shrunk_rate(
                cat_agg.gt_correct, cat_agg.gt_n, global_agg.gt_correct, global_agg.gt_n, 0.5, s
            )
            k = max(n_options or 2, 2)
            counted = min(max(_logit(acc) + math.log(k - 1), 0.0), policy.max_weight)
            weight = (1.0 - unsupported) * learned + unsupported * counted
    soft = 0.0
    if global_agg.agree_n > 0.0:
        thr = policy.agreement_threshold
        agree = _shrunk_rate(
            cat_agg.agree_sum, cat_agg.agree_n, global_agg.agree_sum, global_agg.agree_n, thr, s
        )
        soft += policy.agreement_gain * max(0.0, _logit(agree) - _logit(thr))
    if global_agg.judge_n > 0.0:
        judge = _shrunk_rate(
            cat_agg.judge_sum, cat_agg.judge_n, global_agg.judge_sum, global_agg.judge_n, 0.5, s
        )
        soft += policy.judge_gain * 2.0 * (judge - 0.5)
    if soft != 0.0:
        weight += soft * policy.gt_handover_events / (policy.gt_handover_events + global_agg.gt_n)
    return min(max(weight, policy.min_weight), policy.max_weight)


def accuracy_estimate(
    cat_agg: ModelAggregate, global_agg: ModelAggregate, policy: WeightPolicy = DEFAULT_POLICY
) -> float:
    """A model's accuracy from its verdicts and, where there were none, the votes' beliefs.

    Ground-truth verdicts count as right or wrong; an answer without one counts as right with
    the probability the vote gave it (one-coin Dawid-Skene, online), once the model has
    ``unsupervised_min_answers`` answers on record (before, the votes' beliefs are too noisy to
    beat a plain majority). The category's rate is shrunk toward the global one, itself toward
    one half.
    """
    votes = global_agg.ds_n + global_agg.gt_n >= policy.unsupervised_min_answers
    return _shrunk_rate(
        cat_agg.gt_correct + (cat_agg.ds_sum if votes else 0.0),
        cat_agg.gt_n + (cat_agg.ds_n if votes else 0.0),
        global_agg.gt_correct + (global_agg.ds_sum if votes else 0.0),
        global_agg.gt_n + (global_agg.ds_n if votes else 0.0),
        0.5,
        policy.shrinkage_events,
        global_prior=2.0,
    )


def dependence(
    record: ModelAggregate, other: str, p_self: float, p_other: float, policy: WeightPolicy
) -> float:
    """How far ``other`` duplicates the model of ``record`` (0: independent, 1: a copy).

    The excess of their agreement over what independent models of these accuracies would
    reach (errors spread over the wrong options), above ``dependence_threshold``, shrunk by
    how many questions they shared. The pair is read from ``record`` (see ``pair_stats``).
    """
    found = record.pairs.get(other)
    if found is None or found[0] <= 0.0:
        return 0.0
    n, agreed, chance, _ = found  # ratios do not depend on the decay; only the count does
    expected = p_self * p_other + (1.0 - p_self) * (1.0 - p_other) * chance / n
    excess = (agreed / n - expected) / max(1.0 - expected, 1e-9)
    tau = policy.dependence_threshold
    if excess <= tau:
        return 0.0
    shared = pair_stats(record, other)[0]
    return min((excess - tau) / (1.0 - tau), 1.0) * shared / (shared + policy.dependence_events)


def weights_of(
    aggs: Mapping[AggKey, ModelAggregate],
    models: Iterable[str],
    category: str,
    n_options: int | None = None,
    policy: WeightPolicy = DEFAULT_POLICY,
) -> dict[str, float]:
    """Each model's vote weight on a question, from the panel's records (see ``record_keys``).

    The weight blends two estimates, handing over to the first as ground truth arrives:
    the learned weight (:func:`model_weight`), and the weight the votes alone support, the
    chance-corrected log-odds of :func:`accuracy_estimate`, shared among models that duplicate
    each other (:func:`dependence`) and scaled so the panel's mean is one.
    """

    def record(model: str, cat: str) -> ModelAggregate:
        return aggs.get((model, "panel", cat)) or ModelAggregate.empty(model, "panel", cat)

    wanted = list(dict.fromkeys(models))
    glob = {m: record(m, GLOBAL_CATEGORY) for m in wanted}
    cat = {m: record(m, category) for m in wanted}
    k = n_options or DEFAULT_FREE_OPTIONS
    p_glob = {m: accuracy_estimate(glob[m], glob[m], policy) for m in wanted}
    shared = dict.fromkeys(wanted, 1.0)
    tau = policy.dependence_threshold
    known = {m for m in wanted if glob[m].ds_n + glob[m].gt_n >= policy.unsupervised_min_answers}
    for m in known:  # each pair is kept once, in the record of the name that sorts first
        pm = p_glob[m]
        for j, (n, agreed, chance, _) in glob[m].pairs.items():
            if j not in known or n <= 0.0:
                continue
            pj = p_glob[j]  # the cheap test first: most pairs are independent
            expected = pm * pj + (1.0 - pm) * (1.0 - pj) * chance / n
            if agreed / n - expected <= tau * (1.0 - expected):
                continue
            rho = dependence(glob[m], j, pm, pj, policy)
            shared[m] += rho
            shared[j] += rho
    votes: dict[str, float] = {}
    for m in wanted:
        p = min(max(accuracy_estimate(cat[m], glob[m], policy), 1e-4), 1.0 - 1e-4)
        votes[m] = max(0.0, _logit(p) + math.log(k - 1)) / shared[m]
    mean = sum(votes.values()) / len(votes) if votes else 0.0
    weights: dict[str, float] = {}
    for m in wanted:
        unsupervised = votes[m] / mean if mean > 0.0 else policy.prior_weight
        handover = glob[m].gt_n / (glob[m].gt_n + policy.unsupervised_handover)
        learned = model_weight(cat[m], glob[m], n_options, policy)
        weight = (1.0 - handover) * unsupervised * policy.prior_weight + handover * learned
        weights[m] = min(max(weight, policy.min_weight), policy.max_weight)
    return weights


def panel_weights(
    store: AggregateReader,
    models: Iterable[str],
    category: str,
    n_options: int | None = None,
    policy: WeightPolicy = DEFAULT_POLICY,
) -> dict[str, float]:
    """The weight of each model on a question of ``category``, read from ``store`` at once."""
    wanted = list(dict.fromkeys(models))
    return weights_of(
        store.get_keys(record_keys(wanted, category)), wanted, category, n_options, policy
    )
