"""Keeping API keys out of logs, reprs and error text.

Every key APEX loads is registered here; :func:`redact` scrubs registered keys and anything shaped
like a bearer token from a string, and :func:`redact_processor` does so for every structlog event.
"""

from __future__ import annotations

import re
import threading
from collections.abc import MutableMapping
from typing import Any

_lock = threading.Lock()
_secrets: set[str] = set()
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\"]+")
_KEY_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_-]{8,}|sk-or-[A-Za-z0-9_-]{8,})")
MASK = "[REDACTED]"
_MIN_SECRET_LEN = 4


def register_secret(value: str) -> None:
    """Remember a secret so that :func:`redact` removes it wherever it appears."""
    if len(value) >= _MIN_SECRET_LEN:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret and bearer-token-shaped string masked."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
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
