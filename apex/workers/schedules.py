"""Schedules in the store: a rule, a goal template and options; ``apex.Schedule(...)``.

    schedule = apex.Schedule("standup", objective="Summarise yesterday's commits",
                             cron="0 9 * * 1-5", tz="Europe/Paris", carry=True,
                             budget_usd_per_day=1.0, workflow="budget")
    schedule.add()          # stored; any worker of the database fires it from now on

Each firing creates a goal linked to the schedule (see :mod:`apex.workers.firing`).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import exc

from apex.errors import ScheduleError
from apex.goals.types import GoalSpec, Limits
from apex.goals.verify import VerifierSpec
from apex.store import EvidenceStore
from apex.store.engine import read_transaction, store_error, write_transaction
from apex.store.tables import SCHEDULES, utcnow
from apex.workers.timing import CatchUp, Rule, next_due, parse_every
from apex.workflow import parse_workflow, workflow_text

Overlap = Literal["skip", "queue"]
ScheduleState = Literal["active", "paused"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class GoalTemplate(BaseModel):
    """The goal each firing creates (the workflow's text is kept, as a goal's is)."""

    objective: str
    criteria: str = ""
    category: str = "general"
    workflow: str = "local"
    workflow_toml: str = ""
    limits: Limits = Field(default_factory=Limits)
    """Per-goal limits (no absolute deadline: see :attr:`deadline_s`)."""
    deadline_s: float | None = Field(default=None, gt=0)
    """Each goal's deadline, this long after its firing."""
    verifier: VerifierSpec | None = None
    blocked_after: int = Field(default=3, ge=1)
    n_options: int | None = Field(default=None, ge=2)

    def goal(self, goal_id: str, schedule: str, now: datetime, context: str) -> GoalSpec:
        """The spec of the goal fired at ``now`` (aware)."""
        limits = self.limits
        if self.deadline_s is not None:
            deadline = now + timedelta(seconds=self.deadline_s)
            limits = limits.model_copy(update={"deadline": deadline})
        return GoalSpec(
            id=goal_id,
            objective=self.objective,
            criteria=self.criteria,
            category=self.category,
            workflow=self.workflow,
            workflow_toml=self.workflow_toml,
            limits=limits,
            verifier=self.verifier,
            blocked_after=self.blocked_after,
            n_options=self.n_options,
            context=context,
            schedule=schedule,
        )


class ScheduleSpec(BaseModel):
    """A schedule as stored: its rule, options and goal template."""

    name: str
    rule: Rule
    goal: GoalTemplate
    carry: bool = False
    """Hand the previous firing's best answer, what was missing and the feedback to the next."""
    overlap: Overlap = "skip"
    """``skip``: no firing while the previous goal is unfinished; ``queue``: fire, run after it."""
    catch_up: CatchUp = "once"
    """Due times missed while no worker ran: ``once`` fires one goal for them, ``skip`` none."""
    budget_usd_per_day: float | None = Field(default=None, gt=0)
    """Spend cap over every goal of the schedule, per day in the rule's time zone."""


@dataclass(frozen=True)
class ScheduleInfo:
    """A schedule with its state, next firing and what happened last."""

    spec: ScheduleSpec
    state: ScheduleState
    next_fire_at: datetime
    """Naive UTC."""
    last_fired_at: datetime | None
    last_goal_id: str | None
    note: str
    created_at: datetime


def naive(moment: datetime) -> datetime:
    """An aware moment as the store keeps it (naive UTC)."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def aware(moment: datetime) -> datetime:
    """A stored (naive UTC) moment as an aware one."""
    return moment.replace(tzinfo=UTC)


def new_goal_id() -> str:
    """A fresh goal id, as ``apex.Goal`` makes them."""
    return f"g-{uuid.uuid4().hex[:12]}"


def info_of(row: sa.Row[tuple[object, ...]]) -> ScheduleInfo:
    """A ``schedules`` row as a :class:`ScheduleInfo`."""
    m = row._mapping
    return ScheduleInfo(
        spec=ScheduleSpec.model_validate(m["spec"]),
        state=m["state"],
        next_fire_at=m["next_fire_at"],
        last_fired_at=m["last_fired_at"],
        last_goal_id=m["last_goal_id"],
        note=m["note"],
        created_at=m["created_at"],
    )


class ScheduleStore:
    """Schedules on an :class:`EvidenceStore`'s database."""

    def __init__(self, store: EvidenceStore) -> None:
        self.store = store
        """The store whose database holds the schedules."""

    def add(self, spec: ScheduleSpec) -> ScheduleInfo:
        """Store a new schedule; its first firing is the rule's first due time from now
        (intervals count from now)."""
        if not _NAME.match(spec.name):
            raise ScheduleError(
                f"schedule name '{spec.name}': use letters, digits, '.', '_' or '-' (max 64)"
            )
        now = utcnow()
        spec = spec.model_copy(update={"rule": spec.rule.model_copy(update={"anchor": aware(now)})})
        row = {
            "name": spec.name,
            "created_at": now,
            "updated_at": now,
            "state": "active",
            "spec": spec.model_dump(mode="json"),
            "next_fire_at": naive(next_due(spec.rule, aware(now))),
            "last_fired_at": None,
            "last_goal_id": None,
            "note": "",
        }
        try:
            with write_transaction(self.store.engine) as conn:
                conn.execute(sa.insert(SCHEDULES), [row])
        except exc.IntegrityError as error:
            raise ScheduleError(
                f"a schedule named '{spec.name}' exists; remove it first or pick another name"
            ) from error
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, f"adding schedule {spec.name}") from error
        return self.get(spec.name)

    def get(self, name: str) -> ScheduleInfo:
        """The schedule ``name`` (ScheduleError when there is none)."""
        try:
            with read_transaction(self.store.engine) as conn:
                row = conn.execute(sa.select(SCHEDULES).where(SCHEDULES.c.name == name)).first()
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, f"reading schedule {name}") from error
        if row is None:
            raise ScheduleError(
                f"no schedule '{name}' in {self.store.masked_url}; see apex schedule list"
            )
        return info_of(row)

    def all(self) -> list[ScheduleInfo]:
        """Every schedule, by next firing."""
        try:
            with read_transaction(self.store.engine) as conn:
                rows = conn.execute(sa.select(SCHEDULES).order_by(SCHEDULES.c.next_fire_at)).all()
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, "listing schedules") from error
        return [info_of(r) for r in rows]

    def set_state(self, name: str, state: ScheduleState) -> ScheduleInfo:
        """Pause or resume; resuming sets the next firing from now (nothing piles up)."""
        current = self.get(name)
        values: dict[str, object] = {"state": state, "updated_at": utcnow()}
        if state == "active" and current.state == "paused":
            values["next_fire_at"] = naive(next_due(current.spec.rule, aware(utcnow())))
            values["note"] = "resumed"
        elif state == "paused":
            values["note"] = "paused"
        self._update(name, values)
        return self.get(name)

    def remove(self, name: str) -> None:
        """Delete the schedule (its goals stay)."""
        self.get(name)
        try:
            with write_transaction(self.store.engine) as conn:
                conn.execute(sa.delete(SCHEDULES).where(SCHEDULES.c.name == name))
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, f"removing schedule {name}") from error

    def _update(self, name: str, values: dict[str, object]) -> None:
        try:
            with write_transaction(self.store.engine) as conn:
                conn.execute(sa.update(SCHEDULES).where(SCHEDULES.c.name == name).values(**values))
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, f"updating schedule {name}") from error


class Schedule:
    """A scheduled goal, built like :class:`apex.Goal` plus a rule; :meth:`add` stores it.

    Give ``cron`` (five fields, read in ``tz``) or ``every`` (``"30m"`` or seconds). A Python
    verifier cannot be scheduled: use a :class:`VerifierSpec`.
    """

    def __init__(
        self,
        name: str,
        *,
        objective: str,
        cron: str | None = None,
        every: str | float | None = None,
        tz: str = "UTC",
        criteria: str = "",
        category: str | None = None,
        workflow: str = "local",
        limits: Limits | None = None,
        deadline_s: float | None = None,
        verifier: VerifierSpec | None = None,
        blocked_after: int = 3,
        carry: bool = False,
        overlap: Overlap = "skip",
        catch_up: CatchUp = "once",
        budget_usd_per_day: float | None = None,
        store: EvidenceStore | None = None,
    ) -> None:
        text, source = workflow_text(workflow)
        wf = parse_workflow(text, source)
        self.store = store or EvidenceStore(workflow_db=wf.db)
        """Where the schedule and its goals live."""
        every_s = parse_every(every) if isinstance(every, str) else every
        try:
            self.spec = ScheduleSpec(
                name=name,
                rule=Rule(cron=cron, every_s=every_s, tz=tz),
                goal=GoalTemplate(
                    objective=objective,
                    criteria=criteria,
                    category=category or wf.category,
                    workflow=workflow,
                    workflow_toml=text,
                    limits=limits or Limits(),
                    deadline_s=deadline_s,
                    verifier=verifier,
                    blocked_after=blocked_after,
                ),
                carry=carry,
                overlap=overlap,
                catch_up=catch_up,
                budget_usd_per_day=budget_usd_per_day,
            )
            """The schedule as stored."""
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            prefix = f"{where}: " if where else ""
            raise ScheduleError(f"schedule '{name}': {prefix}{message}") from None
        if self.spec.goal.limits.deadline is not None:
            raise ScheduleError(
                f"schedule '{name}': a schedule takes a deadline per firing (deadline_s), "
                "not a fixed moment"
            )

    def add(self) -> ScheduleInfo:
        """Store the schedule; workers of its database fire it from now on."""
        return ScheduleStore(self.store).add(self.spec)
