"""The vote core: weighted plurality, tie-break, vote distribution, peer agreement, extraction."""

from __future__ import annotations

import math

import pytest

from apex.vote import (
    count_options,
    extract,
    options_of,
    peer_agreement,
    plurality,
    same_answer,
    tie_break,
    vote_distribution,
)
from apex.workflow import ExtractConfig


def test_plurality_weights_and_abstentions() -> None:
    answers = {"a": "X", "b": "X", "c": "Y", "d": None}
    assert plurality(answers, {}) == "X"
    assert plurality(answers, {"a": 1.0, "b": 1.0, "c": 3.0}) == "Y"
    assert plurality(answers, {"c": 0.5}) == "X"  # missing weights default to the prior
    assert plurality({"a": None}, {}) is None
    assert plurality({}, {}) is None


def test_tie_break_is_deterministic_and_fair() -> None:
    tied = {"a": "X", "b": "Y"}
    assert plurality(tied, {}, tie_key="q1") == plurality(tied, {}, tie_key="q1")
    picks = [plurality(tied, {}, tie_key=f"q{i}") for i in range(2000)]
    assert 0.45 < picks.count("X") / len(picks) < 0.55
    assert tie_break(["B", "A"], "k") == tie_break(["A", "B"], "k")  # order does not matter


def test_vote_distribution_counts_unvoted_options() -> None:
    dist = vote_distribution({"a": "X", "b": "X", "c": "Y"}, {}, n_options=4)
    z = math.exp(0) + math.exp(-1) + 2 * math.exp(-2)  # X: 2, Y: 1, two unvoted options: 0
    assert dist["X"] == pytest.approx(1 / z)
    assert dist["Y"] == pytest.approx(math.exp(-1) / z)
    assert sum(vote_distribution({"a": "X", "b": "Y"}, {"a": 2.0}).values()) == pytest.approx(1)


def test_peer_agreement_is_the_share_of_other_members() -> None:
    answers = {"a": "X", "b": "X", "c": "X", "d": "Y", "e": None}
    share = peer_agreement(answers)
    assert share == {"a": 2 / 3, "b": 2 / 3, "c": 2 / 3, "d": 0.0}
    assert peer_agreement({"a": "X", "b": "X", "c": "Y"}) == {"a": None, "b": None, "c": None}
    assert peer_agreement({"a": "X", "b": "X"}, min_peers=1) == {"a": 1.0, "b": 1.0}
    corrected = peer_agreement(answers, n_options=4)
    assert corrected["a"] == pytest.approx((2 / 3 - 1 / 4) / (3 / 4))
    assert corrected["d"] == 0.0  # below chance is floored at 0


def test_expected_answers_are_read_like_candidates() -> None:
    choice = ExtractConfig(kind="choice")
    assert same_answer("C", "(C)", choice) is True
    assert same_answer("C", "The answer is C", choice) is True
    assert same_answer("C", "B", choice) is False
    assert same_answer(None, "B", choice) is None
    number = ExtractConfig(kind="number")
    assert same_answer(extract("about 1,000.0 m", number), "1000", number) is True
    exact = ExtractConfig(kind="exact")
    assert same_answer(extract("Paris.", exact), "paris", exact) is True
    sentence = extract("The capital of France is Paris.", exact)
    assert same_answer(sentence, "Paris", exact) is True  # said anywhere in it
    assert same_answer(sentence, "Par", exact) is False  # on word boundaries only
    assert same_answer(extract("Lyon.", exact), "Paris", exact) is False


def test_options_are_counted_from_option_lines() -> None:
    assert count_options("Which?\nA) one\nB) two\nC) three") == 3
    assert count_options("Which?\n(A) one\n(B) two") == 2
    ten = "Q?\n" + "\n".join(f"{letter}. option {letter}" for letter in "ABCDEFGHIJ")
    assert count_options(ten) == 10
    assert count_options("No options here. A. is not a list") is None
    assert count_options("A) only one") is None
    choice = ExtractConfig(kind="choice")
    assert options_of(ten, choice) == 10
    assert options_of(ten, choice, given=4) == 4  # the item's own number wins
    assert options_of(ten, ExtractConfig(kind="choice", n_options=5)) == 5
    assert options_of(ten, ExtractConfig(kind="exact")) is None  # free-form: no options
