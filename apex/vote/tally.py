"""The weighted tally of a panel's answers: scores, the winner, its probability, agreement.

Votes are keyed by anything unique per voter (a candidate's label in a cycle, a model's name in a
replay); a voter whose answer is None abstains. Weights default to 1.0: equal weights make the
vote a plain majority.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping

DEFAULT_WEIGHT = 1.0
"""Weight of a voter without one: equal weights are a plain majority vote."""
DEFAULT_MIN_PEERS = 3
"""Fewest other answering voters for an agreement figure: with one or two peers the rate
measures how alike two particular models are (a family resemblance) more than accuracy."""
_TIE_TOLERANCE = 1e-9


def vote_scores(
    answers: Mapping[str, str | None],
    weights: Mapping[str, float],
    default_weight: float = DEFAULT_WEIGHT,
) -> dict[str, float]:
    """Summed weight behind each distinct answer (voters answering None abstain)."""
    scores: dict[str, float] = {}
    for voter, answer in answers.items():
        if answer is not None:
            scores[answer] = scores.get(answer, 0.0) + weights.get(voter, default_weight)
    return scores


def top_answers(scores: Mapping[str, float]) -> list[str]:
    """The answers tied at the highest score (empty when there is none)."""
    if not scores:
        return []
    best = max(scores.values())
    tol = _TIE_TOLERANCE * max(1.0, abs(best))
    return [a for a, s in scores.items() if s >= best - tol]


def tie_break(candidates: Iterable[str], tie_key: str = "") -> str:
    """Pick one of tied answers: deterministic for a key, fair across keys (a hash)."""

    def rank(answer: str) -> bytes:
        return hashlib.blake2b(f"{tie_key}\x1f{answer}".encode(), digest_size=8).digest()

    return min(candidates, key=rank)


def plurality(
    answers: Mapping[str, str | None],
    weights: Mapping[str, float],
    *,
    tie_key: str = "",
    default_weight: float = DEFAULT_WEIGHT,
) -> str | None:
    """The answer with the most weight behind it, or None when every voter abstained.

    Exact ties are broken by :func:`tie_break` with ``tie_key`` (the run's or question's id), so a
    tie is settled the same way every time but no answer is favoured across questions.
    """
    tied = top_answers(vote_scores(answers, weights, default_weight))
    if not tied:
        return None
    return tied[0] if len(tied) == 1 else tie_break(tied, tie_key)


def vote_distribution(
    answers: Mapping[str, str | None],
    weights: Mapping[str, float],
    n_options: int | None = None,
    default_weight: float = DEFAULT_WEIGHT,
) -> dict[str, float]:
    """Probability of each voted answer under the conditional-logit reading of the vote.

    P(answer) is proportional to exp(summed weight of its voters); the ``n_options`` minus voted
    options that got no vote share the rest (score 0). Only voted answers are returned.
    """
    scores = vote_scores(answers, weights, default_weight)
    if not scores:
        return {}
    top = max(scores.values())
    unvoted = max(0, (n_options or 0) - len(scores))
    exp = {a: math.exp(s - top) for a, s in scores.items()}
    total = sum(exp.values()) + unvoted * math.exp(-top)
    return {a: e / total for a, e in exp.items()}


def peer_agreement(
    answers: Mapping[str, str | None],
    n_options: int | None = None,
    min_peers: int = DEFAULT_MIN_PEERS,
) -> dict[str, float | None]:
    """For each answering voter: the share of the other answering voters with the same answer.

    With ``n_options`` the share is corrected for chance, (share - 1/K) / (1 - 1/K) floored at
    0, so that agreement on four-option questions is not worth more than on ten-option ones.
    None when fewer than ``min_peers`` other voters answered (no usable reference).
    """
    counts = Counter(a for a in answers.values() if a is not None)
    others = sum(counts.values()) - 1
    if others < max(min_peers, 1):
        return {v: None for v, a in answers.items() if a is not None}
    chance = 1.0 / n_options if n_options else 0.0
    return {
        voter: max(0.0, ((counts[answer] - 1) / others - chance) / (1.0 - chance))
        for voter, answer in answers.items()
        if answer is not None
    }
