"""``apex db``: migrate, check and prune the evidence store, and recover spooled runs."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from apex.cli.common import (
    DbOption,
    StoreWorkflow,
    bad_input,
    console,
    fail,
    guarded,
    print_json,
    run,
)
from apex.cli.stores import check_named_store

if TYPE_CHECKING:
    from apex.store import EvidenceStore

app = typer.Typer(
    name="db",
    help="The evidence store: migrations, integrity check, spooled runs and retention.",
    no_args_is_help=True,
    add_completion=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([wdhms])\s*$", re.IGNORECASE)
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


MAX_AGE = timedelta(days=36_500)
"""The longest ``--older-than``: a hundred years (nothing in a store is older)."""
CONFIRM_BELOW = timedelta(days=1)
"""A cutoff younger than this prunes (nearly) every run, so it needs ``--yes``."""


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``45s`` or ``2w`` as a timedelta, at most :data:`MAX_AGE`;
    ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"'{text}' is not a duration; use a number and a unit: 90d, 12h, 30m, 45s or 2w"
        )
    try:
        age = timedelta(**{_UNITS[match.group(2).lower()]: float(match.group(1))})
    except OverflowError:
        age = MAX_AGE * 2
    if age > MAX_AGE:
        raise ValueError(f"'{text}' is too long; give at most {MAX_AGE.days}d (100 years)")
    return age


def _open(
    db: str | None, workflow: str | None, *, migrate: bool, write: bool = True
) -> EvidenceStore:
    """The store; a named one that does not exist is created only by a command that writes."""
    from apex.cli.stores import open_store
    from apex.workflow import load_workflow

    workflow_db = load_workflow(workflow).db if workflow else None
    return open_store(db, workflow_db, write=write, migrate=migrate)


@app.command("upgrade")
@guarded
def upgrade(
    db: DbOption = None, workflow: StoreWorkflow = None, json_out: JsonOption = False
) -> None:
    """Migrate the evidence store's schema to the newest revision."""
    with _open(db, workflow, migrate=False) as store:
        before = store.revision()
        after = store.upgrade()
        out = {"db": store.masked_url, "from": before, "to": after}
    if json_out:
        print_json(out)
    elif before == after:
        console.print(
            f"{out['db']}: already at revision {after} (head)", markup=False, soft_wrap=True
        )
    else:
        console.print(
            f"{out['db']}: migrated {before or 'empty'} -> {after} (head)",
            markup=False,
            soft_wrap=True,
        )


@app.command("prune")
@guarded
def prune(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Age cutoff: 90d, 12h, 30m, 45s or 2w.")
    ],
    db: DbOption = None,
    workflow: StoreWorkflow = None,
    json_out: JsonOption = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm a cutoff under one day (prunes nearly all).")
    ] = False,
) -> None:
    """Drop raw calls, candidate texts, critiques and evidence older than a cutoff (keeps
    aggregates), then vacuum."""
    from apex.goals.store import prune_checkpoints

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        bad_input(f"--older-than: {exc}")
    if age < CONFIRM_BELOW and not yes:
        bad_input(
            f"--older-than {older_than} would prune (nearly) every run, today's included; add "
            "--yes to confirm, or give a longer cutoff such as 90d"
        )
    with _open(db, workflow, migrate=True, write=False) as store:
        goals = run(prune_checkpoints(store, age))  # before the VACUUM in store.prune
        report = store.prune(age)
        name = store.masked_url
    if json_out:
        print_json({"db": name, **report.model_dump(mode="json"), "goal_checkpoints": goals})
        return
    console.print(
        f"{name}: pruned before {report.cutoff:%Y-%m-%d %H:%M} UTC: {report.runs} runs, "
        f"{report.calls} calls, {report.candidates} candidate texts, {report.critiques} "
        f"critiques, {report.evidence} evidence rows, checkpoints of {goals} finished goals; "
        "aggregates kept",
        markup=False,
        soft_wrap=True,
    )
    if report.bytes_before is not None and report.bytes_after is not None:
        console.print(
            f"file size {report.bytes_before:,} -> {report.bytes_after:,} bytes",
            markup=False,
            soft_wrap=True,
        )


@app.command("check")
@guarded
def check(
    db: DbOption = None, workflow: StoreWorkflow = None, json_out: JsonOption = False
) -> None:
    """Check the database's integrity (SQLite quick_check) and its schema; exit 1 if damaged."""
    from apex.store import EvidenceStore, head_revision, spool
    from apex.store.engine import DAMAGED_FIX
    from apex.workflow import load_workflow

    workflow_db = load_workflow(workflow).db if workflow else None
    check_named_store(db, workflow_db, write=False)
    with EvidenceStore(db, workflow_db=workflow_db, migrate=False, read_only=True) as store:
        name = store.masked_url
        problems = store.check()
        revision = None if problems else store.revision()
    head = head_revision()
    waiting = len(spool.pending())
    if json_out:
        print_json(
            {"db": name, "ok": not problems, "problems": problems, "revision": revision,
             "head": head, "spooled": waiting}
        )  # fmt: skip
    if problems:
        fail(
            f"{name}: damaged: {len(problems)} problem(s), the first: {problems[0]}; {DAMAGED_FIX}"
        )
    if json_out:
        return
    schema = (
        f"schema at revision {revision} (head)"
        if revision == head
        else f"schema at revision {revision or 'none'}, head is {head}: run `apex db upgrade`"
    )
    console.print(f"{name}: ok (quick_check); {schema}", markup=False, soft_wrap=True)
    if waiting:
        console.print(
            f"{waiting} unrecorded run(s) wait in {spool.spool_dir()}: run `apex db recover`",
            markup=False,
            soft_wrap=True,
        )


@app.command("recover")
@guarded
def recover(
    db: DbOption = None,
    workflow: StoreWorkflow = None,
    json_out: JsonOption = False,
    any_db: Annotated[
        bool,
        typer.Option("--any-db", help="Also record runs spooled for another database here."),
    ] = False,
) -> None:
    """Record the runs that were spooled because the store could not take them (each once)."""
    from apex.store import spool

    with _open(db, workflow, migrate=True) as store:
        report = spool.recover(store, any_db=any_db)
        name = store.masked_url
    if json_out:
        print_json({"db": name, **report.model_dump(mode="json")})
    else:
        console.print(
            f"{name}: recorded {len(report.recorded)} spooled run(s); {len(report.already)} "
            f"were recorded already; {len(report.other_db)} wait for another database",
            markup=False,
            soft_wrap=True,
        )
        for other in report.other_db:
            console.print(
                f"  {other.run_id}: for {other.db} (add --any-db to record it here)",
                markup=False,
                soft_wrap=True,
            )
    if report.unreadable:
        fail(f"{len(report.unreadable)} spool file(s) cannot be read: {report.unreadable[0]}")
