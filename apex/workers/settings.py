"""How a worker runs: concurrency, grace on shutdown, heartbeats, retries; one value object."""

from __future__ import annotations

from dataclasses import dataclass

from apex.goals.heartbeat import DEFAULT_HEARTBEAT_S

DEFAULT_CONCURRENCY = 1
"""Goals one worker runs at once."""
DEFAULT_GRACE_S = 30.0
"""On SIGTERM or Ctrl-C: how long the running cycles get to reach a checkpoint."""
DEFAULT_MAX_ATTEMPTS = 8
"""How many times an interrupted goal is retried before it is left for a person."""
DEFAULT_RETRY_BASE_S = 5.0
"""The first retry's delay; each next one doubles it (at most :data:`MAX_RETRY_DELAY_S`)."""
MAX_RETRY_DELAY_S = 600.0
"""The longest wait between two retries of an interrupted goal."""
TICK_S = 1.0
"""How often due schedules are fired (and, on PostgreSQL, stalled jobs retried)."""
STALE_BEATS = 4
"""A worker or lease missing this many heartbeats in a row counts as dead."""


@dataclass(frozen=True)
class WorkerSettings:
    """A worker's knobs (``apex worker`` options); every worker of a database should agree."""

    concurrency: int = DEFAULT_CONCURRENCY
    """Goals run at once."""
    grace_s: float = DEFAULT_GRACE_S
    """Time given to running cycles on shutdown before they are cancelled (and interrupted)."""
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
    """Heartbeat period of the worker and of its goals' leases."""
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    """Retries of an interrupted goal."""
    retry_base_s: float = DEFAULT_RETRY_BASE_S
    """First retry delay of an interrupted goal (doubling after)."""

    @property
    def stale_s(self) -> float:
        """After this long without a heartbeat a worker, a lease or a job counts as dead."""
        return self.heartbeat_s * STALE_BEATS

    def retry_delay(self, attempts: int) -> float:
        """The wait before retry number ``attempts + 1`` of an interrupted goal."""
        return min(self.retry_base_s * 2.0**attempts, MAX_RETRY_DELAY_S)
