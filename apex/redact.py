"""Keeping API keys out of logs, reprs, error text, answers and the store.

Every key APEX loads is registered here. :func:`redact_known` masks every registered key, and any
fragment of one that is :data:`MIN_FRAGMENT` characters or longer (a key cut in half by a length
limit, or echoed in part by a provider), from a string; it is applied to every model answer, so
what APEX stores and prints never holds one. :func:`redact` does the same and also masks anything
shaped like a bearer token or a provider key (for error text and logs); :func:`redact_processor`
applies it to every structlog event. Redact first, cut second: a text cut to a length limit
before redaction could keep half a key that no longer matches.
"""

from __future__ import annotations

import re
import threading
from collections.abc import MutableMapping
from typing import Any

_lock = threading.Lock()
_secrets: set[str] = set()
_pieces: tuple[tuple[str, ...], ...] = ()
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\"]+")
_NUMERIC = re.compile(r"[0-9.,:+eE -]+")
_KEY_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_-]{8,}|sk-or-[A-Za-z0-9_-]{8,})")
MASK = "[REDACTED]"
"""What a masked secret is replaced by."""
MIN_FRAGMENT = 8
"""Any run of this many characters of a registered key is masked wherever it appears (except a
run that could be part of a number, such as ``12345678``: masking it would corrupt figures)."""
_MIN_SECRET_LEN = 4


def _split(secret: str) -> tuple[str, ...]:
    """What to look for of one secret: itself when short, else each of its 8-character runs
    that could not be part of a number (those would mask digits of figures and break JSON)."""
    if len(secret) <= MIN_FRAGMENT:
        return (secret,)
    runs = (secret[i : i + MIN_FRAGMENT] for i in range(len(secret) - MIN_FRAGMENT + 1))
    return (secret, *dict.fromkeys(r for r in runs if not _NUMERIC.fullmatch(r)))


def register_secret(value: str) -> None:
    """Remember a secret so that :func:`redact` and :func:`redact_known` remove it (and any
    fragment of it of :data:`MIN_FRAGMENT` characters or more) wherever it appears."""
    global _pieces
    if len(value) >= _MIN_SECRET_LEN:
        with _lock:
            if value not in _secrets:
                _secrets.add(value)
                _pieces = tuple(_split(s) for s in sorted(_secrets))


def _spans(text: str, pieces: tuple[tuple[str, ...], ...]) -> list[tuple[int, int]]:
    """Where registered secrets or their fragments occur in ``text``, merged, in order."""
    found: list[tuple[int, int]] = []
    for grams in pieces:
        for gram in grams:
            start = text.find(gram)
            while start != -1:
                found.append((start, start + len(gram)))
                start = text.find(gram, start + 1)
    found.sort()
    merged: list[tuple[int, int]] = []
    for start, end in found:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def redact_known(text: str) -> str:
    """``text`` with every registered secret, and every fragment of one of
    :data:`MIN_FRAGMENT` characters or more, masked; nothing else is changed."""
    pieces = _pieces
    if not pieces or not text:
        return text
    spans = _spans(text, pieces)
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for start, end in spans:
        out += [text[last:start], MASK]
        last = end
    out.append(text[last:])
    return "".join(out)


def redact(text: str) -> str:
    """``text`` with every registered secret (and fragment), bearer token and key-shaped
    string masked: for error messages and logs."""
    text = redact_known(text)
    text = _BEARER.sub(rf"\g<1>{MASK}", text)
    return _KEY_SHAPES.sub(MASK, text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    if isinstance(value, BaseException):
        return redact(repr(value))
    return value


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor that masks secrets in every value of an event."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _scrub(value)
    return event_dict
