"""``apex schedule``: add, list, show, pause, resume, remove and run-now scheduled goals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from apex.cli.common import DbOption, StoreWorkflow, bad_input, console, fail, guarded
from apex.cli.db_cmd import parse_duration
from apex.cli.goal_cmd import DEFAULT_WORKFLOW, parse_verifier

if TYPE_CHECKING:  # the stack behind the commands is imported when one runs, not for --help
    from apex.store import EvidenceStore
    from apex.workers import ScheduleInfo

app = typer.Typer(help="Scheduled goals: a goal fired by cron or interval, run by apex worker.")


def _store(db: str | None, workflow: str | None) -> EvidenceStore:
    from apex.store import EvidenceStore
    from apex.workflow import load_workflow

    return EvidenceStore(db, workflow_db=load_workflow(workflow).db)


def _when(moment: datetime | None, tz: str) -> str:
    """A stored (naive UTC) moment in the schedule's zone, with how far it is from now."""
    from apex.workers.timing import zone

    if moment is None:
        return "-"
    aware = moment.replace(tzinfo=UTC)
    delta = (aware - datetime.now(UTC)).total_seconds()
    rel = f"in {delta:.0f}s" if delta >= 0 else f"{-delta:.0f}s ago"
    return f"{aware.astimezone(zone(tz)):%Y-%m-%d %H:%M:%S %Z} ({rel})"


@app.command("add")
@guarded
def add(
    name: Annotated[str, typer.Argument(help="The schedule's name.")],
    objective: Annotated[str, typer.Option(help="What each firing's goal must achieve.")],
    cron: Annotated[str | None, typer.Option(help='Five fields, e.g. "0 9 * * 1-5".')] = None,
    every: Annotated[str | None, typer.Option(help="An interval: 2s, 30m, 2h, 1d.")] = None,
    tz: Annotated[str, typer.Option(help="IANA time zone of --cron and the daily cap.")] = "UTC",
    criteria: Annotated[str, typer.Option(help="How to tell it is achieved.")] = "",
    verify: Annotated[str | None, typer.Option(help="Shell command; exit 0 means met.")] = None,
    match: Annotated[str | None, typer.Option(help="Regex the answer must contain.")] = None,
    max_cycles: Annotated[int, typer.Option(min=1, help="At most this many cycles.")] = 10,
    budget_usd: Annotated[float | None, typer.Option(help="Per goal (USD).")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Per goal.")] = None,
    deadline: Annotated[str | None, typer.Option(help="Per goal, from its firing: 30m.")] = None,
    workflow: Annotated[str, typer.Option("--workflow", "-w")] = DEFAULT_WORKFLOW,
    category: Annotated[str | None, typer.Option(help="Task category for evidence.")] = None,
    carry: Annotated[
        bool, typer.Option(help="Hand the previous firing's answer and feedback to the next.")
    ] = False,
    overlap: Annotated[
        str, typer.Option(help="skip: no firing while the last goal runs; queue: run after it.")
    ] = "skip",
    catch_up: Annotated[
        str, typer.Option(help="Due times missed while no worker ran: once (fire one) or skip.")
    ] = "once",
    budget_usd_per_day: Annotated[
        float | None, typer.Option(help="Cap on every goal of the schedule, per day (USD).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Add a schedule; any worker of its database fires it from now on."""
    from apex.goals.types import Limits
    from apex.store import EvidenceStore
    from apex.workers import Schedule
    from apex.workflow import load_workflow

    if overlap not in ("skip", "queue"):
        bad_input(f"--overlap: '{overlap}' is neither skip nor queue")
    if catch_up not in ("once", "skip"):
        bad_input(f"--catch-up: '{catch_up}' is neither once nor skip")
    deadline_s = None
    if deadline is not None:
        try:
            deadline_s = parse_duration(deadline).total_seconds()
        except ValueError:
            bad_input(
                f"--deadline: '{deadline}' is not a duration (30m, 2h, 1d); it counts per firing"
            )
    schedule = Schedule(
        name,
        objective=objective,
        cron=cron,
        every=every,
        tz=tz,
        criteria=criteria,
        category=category,
        workflow=workflow,
        limits=Limits(max_cycles=max_cycles, budget_usd=budget_usd, max_tokens=max_tokens),
        deadline_s=deadline_s,
        verifier=parse_verifier(verify, match),
        carry=carry,
        overlap=overlap,  # type: ignore[arg-type]  # checked above
        catch_up=catch_up,  # type: ignore[arg-type]  # checked above
        budget_usd_per_day=budget_usd_per_day,
        store=EvidenceStore(db, workflow_db=load_workflow(workflow).db),
    )
    info = schedule.add()
    console.print(
        f"schedule {name}: {info.spec.rule.describe()}, next firing "
        f"{_when(info.next_fire_at, info.spec.rule.tz)}",
        markup=False,
        highlight=False,
    )


@app.command("list")
@guarded
def list_command(db: DbOption = None, workflow: StoreWorkflow = None) -> None:
    """Every schedule: rule, state, next firing, what happened last."""
    from apex.workers import ScheduleStore
    from apex.workers.firing import shown_state, spent

    store = _store(db, workflow)
    table = Table("name", "rule", "state", "next firing", "last")
    now = datetime.now(UTC)
    for info in ScheduleStore(store).all():
        state = shown_state(info, spent(store, info, now))
        table.add_row(
            info.spec.name,
            info.spec.rule.describe(),
            state,
            _when(info.next_fire_at, info.spec.rule.tz) if state == "active" else "-",
            info.note or "-",
        )
    console.print(table)


def _show(store: EvidenceStore, info: ScheduleInfo) -> None:
    from apex.goals.store import GoalStore
    from apex.workers.firing import shown_state, spent

    spec, now = info.spec, datetime.now(UTC)
    today = spent(store, info, now)
    cap = f" of ${spec.budget_usd_per_day:g}" if spec.budget_usd_per_day is not None else ""
    lines = [
        f"schedule {spec.name}: {shown_state(info, today)} · {spec.rule.describe()}",
        f"objective: {spec.goal.objective}",
        f"workflow {spec.goal.workflow} · carry {spec.carry} · overlap {spec.overlap} · "
        f"catch-up {spec.catch_up}",
        f"spent today ${today:.4f}{cap}",
        f"next firing {_when(info.next_fire_at, spec.rule.tz)}",
        f"last firing {_when(info.last_fired_at, spec.rule.tz)} · {info.note or '-'}",
    ]
    for line in lines:
        console.print(line, markup=False, highlight=False)
    table = Table("goal", "state", "cycles", "cost", title="goals (newest first)")
    for goal in GoalStore(store).all(schedule=spec.name)[:10]:
        table.add_row(goal.spec.id, goal.state, str(len(goal.cycles)), f"${goal.cost_usd:.4f}")
    console.print(table)


@app.command("show")
@guarded
def show(name: str, db: DbOption = None, workflow: StoreWorkflow = None) -> None:
    """A schedule in full, with its latest goals."""
    from apex.workers import ScheduleStore

    store = _store(db, workflow)
    _show(store, ScheduleStore(store).get(name))


@app.command("pause")
@guarded
def pause(name: str, db: DbOption = None, workflow: StoreWorkflow = None) -> None:
    """Stop firing (goals already fired go on)."""
    from apex.workers import ScheduleStore

    info = ScheduleStore(_store(db, workflow)).set_state(name, "paused")
    console.print(f"schedule {name}: {info.state}")


@app.command("resume")
@guarded
def resume(name: str, db: DbOption = None, workflow: StoreWorkflow = None) -> None:
    """Fire again, from the next due time (nothing missed while paused fires)."""
    from apex.workers import ScheduleStore

    info = ScheduleStore(_store(db, workflow)).set_state(name, "active")
    when = _when(info.next_fire_at, info.spec.rule.tz)
    console.print(f"schedule {name}: {info.state}, next firing {when}", markup=False)


@app.command("remove")
@guarded
def remove(name: str, db: DbOption = None, workflow: StoreWorkflow = None) -> None:
    """Delete the schedule (its goals and their history stay)."""
    from apex.workers import ScheduleStore

    ScheduleStore(_store(db, workflow)).remove(name)
    console.print(f"schedule {name}: removed")


@app.command("run-now")
@guarded
def run_now(name: str, db: DbOption = None, workflow: StoreWorkflow = None) -> None:
    """Fire once now (due or not, overlap ignored; the daily cap holds); prints the goal id."""
    from apex.goals.queue import enqueue
    from apex.workers import ScheduleStore
    from apex.workers.firing import fire_one

    store = _store(db, workflow)
    ScheduleStore(store).get(name)  # one line when there is no such schedule
    firing = fire_one(store, name, datetime.now(UTC), force=True)
    if firing.goal is None:
        fail(f"schedule {name}: {firing.note}")
    enqueue(store, firing.goal)
    console.print(firing.goal.id, markup=False, highlight=False)
