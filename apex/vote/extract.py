"""Extracting a comparable answer from free text, matching it, and counting a prompt's options.

choice: a letter A-J ("answer is (X)", then "Answer: X", then the last standalone letter);
number: the last number; exact: the text normalized (case, spacing, final punctuation);
regex: the first group (or the whole match) of the workflow's pattern. Every place that compares
answers (vote synthesis, ground truth, feedback) goes through :func:`extract` and
:func:`same_answer`, and every place that normalizes text through :func:`normalize_text`.
"""

from __future__ import annotations

import re

from apex.workflow import ExtractConfig

_ANSWER_IS = re.compile(r"answer is:?\s*\(?([A-J])\)?(?![A-Za-z])", re.IGNORECASE)
_ANSWER_COLON = re.compile(r"answer\s*[:=]\s*\(?([A-J])\)?(?![A-Za-z])", re.IGNORECASE)
_LONE_LETTER = re.compile(r"(?<![A-Za-z])\(?([A-J])\)?(?![A-Za-z'])")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def extract_choice(text: str) -> str | None:
    """The chosen letter A-J, or None."""
    for pattern in (_ANSWER_IS, _ANSWER_COLON):
        found = pattern.findall(text)
        if found:
            return str(found[-1]).upper()
    letters = _LONE_LETTER.findall(text)
    return str(letters[-1]) if letters else None


def extract_number(text: str) -> str | None:
    """The last number in ``text`` in a canonical form ('1,000.0' -> '1000'), or None."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        value = float(found[-1].replace(",", ""))
    except ValueError:
        return None
    return str(int(value)) if value.is_integer() else repr(value)


def normalize_text(text: str) -> str | None:
    """Lower-case, single-spaced text without surrounding quotes or final punctuation."""
    norm = " ".join(text.lower().split()).strip(" \"'`").rstrip(".!;:,")
    return norm or None


def extract(text: str, config: ExtractConfig) -> str | None:
    """The comparable answer in ``text`` according to ``config``, or None."""
    match config.kind:
        case "choice":
            return extract_choice(text)
        case "number":
            return extract_number(text)
        case "exact":
            return normalize_text(text)
        case "regex":
            found = re.search(config.pattern or "", text)
            if not found:
                return None
            return normalize_text(found.group(1) if found.groups() else found.group(0))


def same_answer(extracted: str | None, expected: str, config: ExtractConfig) -> bool | None:
    """Whether an extracted answer matches the ``expected`` one (None: nothing was extracted).

    The expected answer is read the same way as the candidate's (``"(C)"``, ``"C"`` and
    ``"The answer is C"`` are all ``C`` for a choice), falling back to its text as given;
    case does not matter. Free text (``exact``) matches by normalized containment on word
    boundaries: "The capital of France is Paris." answers "Paris".
    """
    if extracted is None:
        return None
    wanted = extract(expected, config) or expected.strip()
    if config.kind == "exact":  # free text: the expected answer, said anywhere in it, counts
        return re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", extracted) is not None
    return extracted.casefold() == wanted.casefold()


_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])[).:]\s+\S", re.MULTILINE)


def count_options(prompt: str) -> int | None:
    """How many lettered options a prompt lists, one per line (``A) ...``, ``(B) ...``,
    ``C. ...``, ``D: ...``): the longest run A, B, C... from A; None below two."""
    best = run = 0
    for found in _OPTION_LINE.finditer(prompt):
        letter = found.group(1)
        run = run + 1 if ord(letter) == ord("A") + run else int(letter == "A")
        best = max(best, run)
    return best if best >= 2 else None


def options_of(prompt: str, config: ExtractConfig, given: int | None = None) -> int | None:
    """A question's number of options: ``given`` (a batch item, the API, a goal), else the
    workflow's ``[extract] n_options``, else, for choice answers, counted from the prompt."""
    if given is not None:
        return given
    if config.n_options is not None:
        return config.n_options
    return count_options(prompt) if config.kind == "choice" else None
