"""Extracting a comparable answer from free text, matching it, and counting a prompt's options.

choice: the letter A-J the text commits to (see :func:`extract_choice`); number: the last number;
exact: the text normalized (case, spacing, final punctuation); regex: the first group (or the
whole match) of the workflow's pattern. Every place that compares answers (vote synthesis, ground
truth, feedback) goes through :func:`extract` and :func:`same_answer`, and every place that
normalizes text through :func:`normalize_text`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from apex.workflow import ExtractConfig

_MARKER = re.compile(
    r"\b(?:answer|option|choice)\s+(?:is|would\s+be|should\s+be|must\s+be|will\s+be)\b[ \t]*:?"
    r"|\banswer\s*[:=]",
    re.IGNORECASE,
)
_NEGATED = re.compile(r"\s*(?:not|never|neither|unclear|unknown)\b", re.IGNORECASE)
_FILLER = re.compile(r"[ \t]*(\n?)\s*(?:(?:option|choice|letter)\s+)?", re.IGNORECASE)
_TOKEN = re.compile(r"\(([A-Ja-j])\)|\[([A-J])\]|(?<![A-Za-z0-9])([A-J])(?![A-Za-z0-9'\u2019])\)?")
_PRONOUN = re.compile(r"\s+(?!(?:because|since|as|and|or)\b)[a-z]")
_SEPARATOR = re.compile(
    r"\s*(?:,|/|;|&|\.{2,}|\u2026|\bor\b|\band\b)?\s*(?:(?:option|choice)\s+)?", re.IGNORECASE
)
_LONE = re.compile(r"^[\s>#\-\u2013\u2014:.]*(?:\(([A-J])\)|\[([A-J])\]|([A-J]))[\s.!)\]]*$")
_LATEX = re.compile(r"\\(?:boxed|text|textbf|mathbf|mathrm)\s*\{([^{}]*)\}")
_MARKUP = re.compile(r"[*`$]|\\[()\[\]]")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _plain(text: str) -> str:
    """The text without the markup models wrap answers in (``**B**``, ``$\\boxed{B}$``)."""
    return _MARKUP.sub("", _LATEX.sub(r"\1", text))


def _token(text: str, pos: int) -> tuple[str, int] | None:
    """The option letter written at ``pos`` (``B``, ``(B)``, ``[B]``, ``B)``) and where it ends."""
    found = _TOKEN.match(text, pos)
    if found is None:
        return None
    letter = (found.group(1) or found.group(2) or found.group(3)).upper()
    if found.group(3) == "I" and _PRONOUN.match(text, found.end()):  # "Answer: I think..."
        return None
    return letter, found.end()


def _committed(text: str, pos: int) -> list[str]:
    """The letters a commitment ("answer is", "Answer:") ending at ``pos`` names: one, several
    ("(A) or (B)", "(A)... (B)... (C)"), or none ("is not (A)", "is unclear")."""
    if _NEGATED.match(text, pos):
        return []
    filler = _FILLER.match(text, pos)
    start = filler.end() if filler else pos
    if filler and filler.group(1):  # "Answer:" then a new line: only a letter alone on it counts
        letter = _lone(text[text.rfind("\n", 0, start) + 1 :].split("\n", 1)[0])
        return [letter] if letter is not None else []
    letters: list[str] = []
    while (found := _token(text, start)) is not None:
        letters.append(found[0])
        separator = _SEPARATOR.match(text, found[1])
        start = separator.end() if separator else found[1]
    return letters


def _lone(line: str) -> str | None:
    found = _LONE.match(line)
    return (found.group(1) or found.group(2) or found.group(3)) if found else None


def _final_letters(text: str) -> list[str]:
    """Letters alone on the text's last lines (``B``, ``(B)``, ``**B.**``), last first."""
    letters: list[str] = []
    for line in reversed([ln for ln in text.splitlines() if ln.strip()]):
        letter = _lone(line)
        if letter is None:
            break
        letters.append(letter)
    return letters


def extract_choice(text: str) -> str | None:
    """The letter A-J that ``text`` commits to, or None when it commits to none or to several.

    A commitment is an explicit "answer is (X)" (also "answer would be X", "correct option is
    X", ``\\boxed{X}``), an "Answer: X", or a letter alone on the final line. Every commitment
    must name the same letter: "The answer is (A)... (B)... (C)", "(A) or (B)", a list of the
    options, "A B C D", a refusal ("I cannot determine the answer.") and an answer that only
    mentions letters ("A definitive answer...", "Option (B) is wrong") all abstain.
    """
    return _short_choice(text) if len(text) <= 256 else _choice(text)


@lru_cache(maxsize=8192)  # short answers ("(B)", "The answer is C.") repeat across questions
def _short_choice(text: str) -> str | None:
    return _choice(text)


def _choice(text: str) -> str | None:
    plain = _plain(text)
    letters: list[str] = []
    for marker in _MARKER.finditer(plain):
        letters += _committed(plain, marker.end())
    letters += _final_letters(plain)
    distinct = set(letters)
    return distinct.pop() if len(distinct) == 1 else None


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
