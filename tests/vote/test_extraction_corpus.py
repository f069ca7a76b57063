"""A corpus of tricky choice answers: a vote is a committed answer, every non-answer abstains.

The bench (``../shared/bench/mmlu-pro``) keeps only the letters its cascade extracted from the
models' raw outputs, not the outputs; the phrasings below are written after the forms those
models use (chain of thought ending "The answer is (X).", "Answer: X", markdown, LaTeX boxes,
a letter alone on the last line) and after the ways answers go wrong (a commitment to several
letters, lists of options, refusals, letters that are only mentioned).
"""

from __future__ import annotations

import pytest

from apex.vote import extract, extract_choice, same_answer
from apex.workflow import ExtractConfig

COMMITTED: dict[str, str] = {
    # The benchmark's own panel answers and the evidence tests' scripted ones: exactly these.
    "The answer is (A).": "A",
    "The answer is (J).": "J",
    "Let's think step by step. Newton's second law gives F = ma = 2 * 3 = 6 N, which is "
    "option (C) among (A) 2 N, (B) 3 N, (C) 6 N, (D) 9 N. The answer is (C).": "C",
    "A: Let's think step by step. The tax is levied on the seller, so the supply curve shifts "
    "left.\nThe answer is (E).": "E",
    "The answer is: (G)": "G",
    "the answer is (h)": "H",
    "Therefore, the correct answer is option B.": "B",
    "So the answer would be D.": "D",
    "The best answer is C) 42 m/s, because the other options ignore friction.": "C",
    "The answer is (B), not (A).": "B",
    "The answer is (B). Option (A) confuses mass with weight.": "B",
    "The answer is A because the reaction is exothermic.": "A",
    "The answer is I.": "I",
    "I pick C. The answer is (C)": "C",
    "The answer is (F). To double-check: yes, the answer is (F).": "F",
    "Answer: B": "B",
    "Answer: (D)": "D",
    "**Answer:** (C)": "C",
    "**Final Answer: E**": "E",
    "Final answer: J": "J",
    "Answer:\nB": "B",
    "The final answer is $\\boxed{D}$": "D",
    "The final answer is $\\boxed{(A)}$.": "A",
    "The answer is **(B)**.": "B",
    "Reasoning: the enzyme is denatured above 60 C.\n\nB": "B",
    "The enzyme is denatured above 60 C.\n\n(B)": "B",
    "**H**": "H",
    "C.": "C",
    "(A)": "A",
}

ABSTAINS: list[str] = [
    # several different committed letters
    "The answer is (A)... (B)... (C)... (D)",
    "The answer is (A) or (B).",
    "The answer is either (A) or (B), I cannot tell which.",
    "Answer: A and C",
    "The answer is (B).\nThe answer is (C).",
    "At first I thought the answer is (A), but the answer is (D).",
    # lists of options and letters that are only mentioned
    "A B C D E F G H I J",
    "A) 4\nB) 7\nC) 9\nD) 11",
    "(A) or (B) or (C)",
    "A\nB\nC",
    "- A\n- B",
    "Options (A) and (C) are wrong; (B) and (D) remain.",
    "Option (B) is wrong because it ignores friction.",
    "the answer:\n(A) 4\n(B) 7",
    # refusals and non-answers
    "I cannot determine the answer.",
    "I don't know.",
    "No answer.",
    "No idea.",
    "A definitive answer is impossible without more data.",
    "A definitive answer would need more context.",
    "The answer is not (A).",
    "The answer is unclear from the options given.",
    "The answer is a matter of definition.",
    "Answer: I think it depends on the temperature.",
    "I think (B)",
    "",
    "   ",
]


@pytest.mark.parametrize(("text", "letter"), sorted(COMMITTED.items()))
def test_a_committed_answer_votes_its_letter(text: str, letter: str) -> None:
    assert extract_choice(text) == letter


@pytest.mark.parametrize("text", ABSTAINS)
def test_a_non_answer_abstains(text: str) -> None:
    assert extract_choice(text) is None


def test_every_bench_letter_of_the_panel_phrasing() -> None:
    """The live benchmark serves "The answer is (X)." for each recorded letter, "No answer." for
    a null: the evidence and replay figures rest on reading those back exactly."""
    for letter in "ABCDEFGHIJ":
        assert extract_choice(f"The answer is ({letter}).") == letter
        assert extract(f"The answer is ({letter}).", ExtractConfig(kind="choice")) == letter
    assert extract_choice("No answer.") is None


def test_expected_answers_read_the_same_way() -> None:
    choice = ExtractConfig(kind="choice")
    for expected in ("C", "(C)", "The answer is C", "c"):
        assert same_answer("C", expected, choice) is True, expected
