"""Firing due schedules: each firing writes a queued goal linked to its schedule.

One write transaction per schedule locks its row, checks it is still due, decides (missed
periods, ``--overlap``, the daily spend cap), writes the goal and moves ``next_fire_at`` on, so a
due time fires once however many workers tick at once. The caller then puts the goal's job on
the queue (PostgreSQL); should it die before that, :func:`orphans` finds the goal again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from apex.goals import decide
from apex.goals.store import GoalStore, goal_row
from apex.goals.types import TERMINAL_STATES, GoalSpec
from apex.store import EvidenceStore
from apex.store.engine import read_transaction, store_error, write_transaction
from apex.store.tables import GOAL_CYCLES, GOALS, SCHEDULES
from apex.workers.schedules import ScheduleInfo, aware, info_of, naive, new_goal_id
from apex.workers.timing import day_start, due

Action = Literal["fired", "skipped", "capped"]


@dataclass(frozen=True)
class Firing:
    """What one due schedule did."""

    schedule: str
    action: Action
    note: str
    goal: GoalSpec | None = None
    """The goal it created (``fired`` only)."""


def spent_today(conn: Connection, info: ScheduleInfo, now: datetime) -> float:
    """Known cost of every cycle the schedule's goals ran since midnight (the rule's zone)."""
    since = naive(day_start(info.spec.rule, now))
    query = (
        sa.select(sa.func.coalesce(sa.func.sum(GOAL_CYCLES.c.cost_usd), 0.0))
        .select_from(GOAL_CYCLES.join(GOALS, GOALS.c.id == GOAL_CYCLES.c.goal_id))
        .where(GOALS.c.schedule == info.spec.name, GOAL_CYCLES.c.created_at >= since)
    )
    return float(conn.execute(query).scalar_one())


def unfinished(conn: Connection, name: str) -> tuple[str, str] | None:
    """The schedule's oldest goal not yet finished, as ``(id, stored state)``."""
    row = conn.execute(
        sa.select(GOALS.c.id, GOALS.c.state)
        .where(GOALS.c.schedule == name, GOALS.c.state.not_in(sorted(TERMINAL_STATES)))
        .order_by(GOALS.c.created_at)
        .limit(1)
    ).first()
    return (row.id, row.state) if row else None


def carried(store: EvidenceStore, name: str) -> str:
    """``--carry``: the previous finished firing's best answer, what was missing, the feedback."""
    with read_transaction(store.engine) as conn:
        previous = conn.execute(
            sa.select(GOALS.c.id)
            .where(GOALS.c.schedule == name, GOALS.c.state.in_(sorted(TERMINAL_STATES)))
            .order_by(GOALS.c.created_at.desc())
            .limit(1)
        ).scalar()
    if previous is None:
        return ""
    status = GoalStore(store).status(previous)
    best = decide.best_cycle(status.cycles)
    last = status.cycles[-1] if status.cycles else None
    parts = [
        f"The previous run of this scheduled goal ({previous}, {status.state}, "
        f"{status.updated_at:%Y-%m-%d %H:%M} UTC) left this to build on."
    ]
    if best is not None:
        parts.append(f"Its best answer:\n{best.answer}")
    missing = (best.missing if best else []) or (last.missing if last else [])
    if missing:
        parts.append("What was still missing:\n" + "\n".join(f"- {m}" for m in missing))
    if last is not None and last.feedback:
        parts.append(f"The judge's and verifier's feedback on its last attempt:\n{last.feedback}")
    return "\n\n".join(parts) if best or missing or (last and last.feedback) else ""


def _fire(
    conn: Connection, info: ScheduleInfo, now: datetime, context: str, spent: float
) -> tuple[GoalSpec, str]:
    """Write the goal of a firing; its spec and a note (its budget trimmed to the day's cap)."""
    goal = info.spec.goal.goal(new_goal_id(), info.spec.name, now, context)
    note = f"fired {goal.id}"
    cap = info.spec.budget_usd_per_day
    if cap is not None:
        left = cap - spent
        budget = goal.limits.budget_usd
        if budget is None or left < budget:
            goal = goal.model_copy(
                update={"limits": goal.limits.model_copy(update={"budget_usd": left})}
            )
            note += f" (budget ${left:.4f}: what is left of today's ${cap:g})"
    conn.execute(sa.insert(GOALS), [goal_row(goal, "queued")])
    return goal, note


def fire_one(store: EvidenceStore, name: str, now: datetime, *, force: bool = False) -> Firing:
    """Fire ``name`` if due at ``now`` (``force``: run-now, due or not, overlap ignored).

    The daily spend cap holds even when forced.
    """
    context = ""
    try:
        with read_transaction(store.engine) as conn:
            row = conn.execute(sa.select(SCHEDULES).where(SCHEDULES.c.name == name)).first()
        if row is not None and info_of(row).spec.carry:
            context = carried(store, name)
        with write_transaction(store.engine) as conn:
            row = conn.execute(
                sa.select(SCHEDULES).where(SCHEDULES.c.name == name).with_for_update()
            ).first()
            if row is None:
                return Firing(name, "skipped", "removed")
            info = info_of(row)
            firing, values = _decide(conn, info, now, context, force)
            if values:
                conn.execute(sa.update(SCHEDULES).where(SCHEDULES.c.name == name).values(**values))
            return firing
    except exc.SQLAlchemyError as error:
        raise store_error(error, store.url, f"firing schedule {name}") from error


def _decide(
    conn: Connection, info: ScheduleInfo, now: datetime, context: str, force: bool
) -> tuple[Firing, dict[str, object]]:
    name = info.spec.name
    values: dict[str, object] = {"updated_at": naive(now)}
    periods = 1
    if not force:
        if info.state != "active":
            return Firing(name, "skipped", "paused"), {}
        decision = due(info.spec.rule, aware(info.next_fire_at), now, info.spec.catch_up)
        if decision is None:
            return Firing(name, "skipped", "not due"), {}
        values["next_fire_at"], periods = naive(decision.next_at), decision.periods
        if not decision.fire:
            note = f"skipped {decision.missed} missed firing(s) (--catch-up skip)"
            return Firing(name, "skipped", note), values | {"note": note}
        if info.spec.overlap == "skip" and (busy := unfinished(conn, name)) is not None:
            note = f"skipped: goal {busy[0]} is still {busy[1]} (--overlap skip)"
            return Firing(name, "skipped", note), values | {"note": note}
    cap = info.spec.budget_usd_per_day
    spent = spent_today(conn, info, now) if cap is not None else 0.0
    if cap is not None and spent >= cap:
        note = f"capped: ${spent:.4f} of ${cap:g} spent today ({info.spec.rule.tz})"
        return Firing(name, "capped", note), values | {"note": note}
    goal, note = _fire(conn, info, now, context, spent)
    if periods > 1:
        note += f", for {periods} due times (--catch-up once)"
    values |= {"last_fired_at": naive(now), "last_goal_id": goal.id, "note": note}
    return Firing(name, "fired", note, goal), values


def fire_due(store: EvidenceStore, now: datetime) -> list[Firing]:
    """Fire every active schedule due at ``now`` (aware); what each did."""
    query = sa.select(SCHEDULES.c.name).where(
        SCHEDULES.c.state == "active", SCHEDULES.c.next_fire_at <= naive(now)
    )
    try:
        with read_transaction(store.engine) as conn:
            names = list(conn.execute(query).scalars())
    except exc.SQLAlchemyError as error:
        raise store_error(error, store.url, "reading due schedules") from error
    return [fire_one(store, name, now) for name in names]


def orphans(store: EvidenceStore, older_than: timedelta, now: datetime) -> list[GoalSpec]:
    """Goals left ``queued`` for longer than ``older_than`` (their job may never have been
    deferred): the queue defers them again, a job already waiting being kept."""
    query = sa.select(GOALS.c.spec).where(
        GOALS.c.state == "queued", GOALS.c.updated_at < naive(now - older_than)
    )
    try:
        with read_transaction(store.engine) as conn:
            return [GoalSpec.model_validate(s) for s in conn.execute(query).scalars()]
    except exc.SQLAlchemyError as error:
        raise store_error(error, store.url, "reading queued goals") from error


def spent(store: EvidenceStore, info: ScheduleInfo, now: datetime) -> float:
    """What the schedule's goals spent today (its daily cap's day), for displays."""
    try:
        with read_transaction(store.engine) as conn:
            return spent_today(conn, info, now)
    except exc.SQLAlchemyError as error:
        raise store_error(error, store.url, f"reading the spend of {info.spec.name}") from error


def shown_state(info: ScheduleInfo, spent_usd: float) -> str:
    """``paused``, ``capped`` (today's spend reached the cap) or ``active``."""
    cap = info.spec.budget_usd_per_day
    if info.state == "active" and cap is not None and spent_usd >= cap:
        return "capped"
    return info.state
