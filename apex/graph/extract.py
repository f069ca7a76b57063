"""Extracting a comparable answer from free text, for ``vote`` synthesis and fallbacks.

choice: a letter A-J ("answer is (X)", then "Answer: X", then the last standalone letter);
number: the last number; exact: the text normalized (case, spacing, final punctuation);
regex: the first group (or the whole match) of the workflow's pattern.
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
