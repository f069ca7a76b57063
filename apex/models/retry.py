"""How a failed call is retried: exponential backoff with full jitter, or the server's
``Retry-After``."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from apex.models.config import DEFAULT_MAX_RETRIES

DEFAULT_BACKOFF_S = 0.5
"""The first backoff step (doubled per attempt, jittered)."""
DEFAULT_MAX_BACKOFF_S = 20.0
"""The longest backoff step."""
DEFAULT_MAX_RETRY_AFTER_S = 60.0
"""A ``Retry-After`` longer than this ends the retries instead of waiting."""


@dataclass(frozen=True)
class RetryPolicy:
    """How failed attempts are retried."""

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_s: float = DEFAULT_BACKOFF_S
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``: Retry-After, else jittered backoff."""
        if retry_after is not None:
            return retry_after
        return random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
