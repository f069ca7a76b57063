"""When a schedule is due: cron rules in a time zone, fixed intervals, missed periods (pure).

Every function takes the moment it reasons about (an aware datetime), so tests inject a clock
rather than wait. Cron expressions have five fields (minute hour day month weekday) and are read
in the schedule's time zone, so ``0 9 * * 1-5`` in ``Europe/Paris`` is 09:00 Paris time on
either side of a daylight-saving change; a time that does not exist that day (02:30 on the
spring-forward night) fires at the first moment after it. ``--every`` intervals are counted from
the schedule's creation, whatever the time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter  # type: ignore[import-untyped]  # croniter ships no types
from pydantic import BaseModel, Field, model_validator

from apex.errors import ScheduleError

CatchUp = Literal["once", "skip"]
MISFIRE_S = 60.0
"""A due time passed by more than this when it is noticed (no worker ran) counts as missed."""
MAX_MISSED = 100_000
"""Missed periods counted at most (beyond, the count is reported as this)."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_every(value: str) -> float:
    """``--every``: ``30s``, ``30m``, ``2h``, ``1d`` as seconds (at least one second)."""
    found = _DURATION.match(value)
    if found is None:
        raise ScheduleError(f"--every: '{value}' is not a duration such as 2s, 30m, 2h or 1d")
    seconds = float(found.group(1)) * _UNIT_S[found.group(2)]
    if seconds < 1:
        raise ScheduleError(f"--every: '{value}' is shorter than one second")
    return seconds


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Paris``, ``UTC``), or a one-line ScheduleError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"--tz: unknown time zone '{name}'; use an IANA name such as Europe/Paris or UTC"
        ) from None


class Rule(BaseModel):
    """When a schedule fires: a cron expression in a time zone, or a fixed interval."""

    cron: str | None = None
    """Five-field cron expression, read in :attr:`tz`."""
    every_s: float | None = Field(default=None, ge=1)
    """Interval in seconds, counted from :attr:`anchor`."""
    tz: str = "UTC"
    """IANA time zone of the cron expression (and of the daily spend cap's day)."""
    anchor: datetime = Field(default_factory=lambda: datetime.now(UTC))
    """Where intervals are counted from (the schedule's creation)."""

    @model_validator(mode="after")
    def _one_rule(self) -> Rule:
        if (self.cron is None) == (self.every_s is None):
            raise ValueError("give exactly one of --cron or --every")
        if self.cron is not None and (
            len(self.cron.split()) != 5 or not croniter.is_valid(self.cron)
        ):
            raise ValueError(
                f"--cron: '{self.cron}' is not a five-field cron expression "
                "(minute hour day month weekday, e.g. '0 9 * * 1-5')"
            )
        zone(self.tz)
        return self

    def describe(self) -> str:
        """``cron 0 9 * * 1-5 (Europe/Paris)`` or ``every 30m``."""
        if self.cron is not None:
            return f"cron {self.cron} ({self.tz})"
        seconds = float(self.every_s or 0)
        for unit in ("d", "h", "m"):
            if seconds >= _UNIT_S[unit] and seconds % _UNIT_S[unit] == 0:
                return f"every {seconds / _UNIT_S[unit]:g}{unit}"
        return f"every {seconds:g}s"


def next_due(rule: Rule, after: datetime) -> datetime:
    """The first due time strictly after ``after`` (aware, UTC)."""
    if rule.every_s is not None:
        period = timedelta(seconds=rule.every_s)
        if after < rule.anchor:
            return rule.anchor.astimezone(UTC)
        k = int((after - rule.anchor) / period) + 1
        return (rule.anchor + k * period).astimezone(UTC)
    local = after.astimezone(zone(rule.tz))
    found: datetime = croniter(rule.cron, local).get_next(datetime)
    return found.astimezone(UTC)


@dataclass(frozen=True)
class Due:
    """What the due times between a schedule's next firing and now call for."""

    fire: bool
    """Whether to fire now."""
    periods: int
    """Due times passed (1 when on time; more when periods were missed)."""
    late_s: float
    """How late the latest due time is noticed."""
    next_at: datetime
    """The first due time after now."""

    @property
    def missed(self) -> int:
        """Periods missed (passed while nothing fired), besides the one fired or skipped now."""
        return self.periods - 1 if self.fire or self.late_s <= MISFIRE_S else self.periods


def due(rule: Rule, next_fire_at: datetime, now: datetime, catch_up: CatchUp) -> Due | None:
    """The decision at ``now`` for a schedule due at ``next_fire_at`` (None: not due yet).

    Due times that pile up while no worker ran coalesce: ``once`` fires one goal for all of
    them; ``skip`` fires only when the latest one is on time (noticed within
    :data:`MISFIRE_S`), else waits for the next due time.
    """
    if next_fire_at > now:
        return None
    latest, periods = next_fire_at, 1
    if rule.every_s is not None:  # arithmetic, not a walk: days of 2s periods cost nothing
        periods = int((now - next_fire_at) / timedelta(seconds=rule.every_s)) + 1
        latest = next_fire_at + (periods - 1) * timedelta(seconds=rule.every_s)
    else:
        while periods < MAX_MISSED and (following := next_due(rule, latest)) <= now:
            latest, periods = following, periods + 1
    late_s = (now - latest).total_seconds()
    fire = catch_up == "once" or late_s <= MISFIRE_S
    return Due(fire=fire, periods=periods, late_s=late_s, next_at=next_due(rule, now))


def day_start(rule: Rule, now: datetime) -> datetime:
    """Midnight of ``now``'s day in the rule's time zone (aware, UTC): the spend cap's day."""
    local = now.astimezone(zone(rule.tz))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC)
