"""Which report an argument asks for: a goal id, a run id, or ``--since 7d``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import sqlalchemy as sa

from apex.errors import ConfigError
from apex.report.data import (
    GoalReport,
    PeriodReport,
    RunReport,
    goal_report,
    period_report,
    run_report,
)
from apex.store import EvidenceStore
from apex.store.engine import read_transaction
from apex.store.tables import GOALS, utcnow

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")


def parse_since(text: str) -> timedelta:
    """``30m``, ``24h``, ``7d`` or ``2w`` as a duration (ConfigError otherwise)."""
    match = _SINCE.match(text.lower())
    if match is None:
        raise ConfigError(f"--since {text!r} is not a duration: write it like 30m, 24h, 7d or 2w")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def load_report(
    store: EvidenceStore,
    target: str | None,
    since: str | None = None,
    now: datetime | None = None,
) -> GoalReport | RunReport | PeriodReport:
    """The report ``target`` (a goal id, else a run id) or ``since`` asks for."""
    if (target is None) == (since is None):
        raise ConfigError("give a goal id, a run id or --since (such as --since 7d), one of them")
    if since is not None:
        until = now or utcnow()
        return period_report(store, until - parse_since(since), until)
    assert target is not None
    with read_transaction(store.engine) as conn:
        is_goal = conn.execute(sa.select(GOALS.c.id).where(GOALS.c.id == target)).first()
    if is_goal is not None:
        return goal_report(store, target)
    run = run_report(store, target)
    if run is None:
        raise ConfigError(
            f"no goal or run {target!r} in {store.masked_url}: "
            "`apex goal list` shows goals, `apex report --since 7d` every recent run"
        )
    return run
