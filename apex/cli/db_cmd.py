"""``apex db``: migrate the evidence store and prune old raw rows."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer

from apex.cli.common import console, fail, guarded, print_json, run
from apex.goals.store import prune_checkpoints
from apex.store import EvidenceStore
from apex.workflow import load_workflow

app = typer.Typer(
    name="db",
    help="The evidence store: schema migrations and retention.",
    no_args_is_help=True,
    add_completion=False,
)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL or SQLite path (default: APEX_DB, the workflow's db, "
        "$APEX_HOME/apex.db).",
    ),
]
WorkflowOption = Annotated[
    str | None,
    typer.Option("--workflow", "-w", help="Workflow whose `db` key names the database."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([wdhms])\s*$", re.IGNORECASE)
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``45s`` or ``2w`` as a timedelta; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"'{text}' is not a duration; use a number and a unit: 90d, 12h, 30m, 45s or 2w"
        )
    return timedelta(**{_UNITS[match.group(2).lower()]: float(match.group(1))})


def _open(db: str | None, workflow: str | None, *, migrate: bool) -> EvidenceStore:
    workflow_db = load_workflow(workflow).db if workflow else None
    return EvidenceStore(db, workflow_db=workflow_db, migrate=migrate)


@app.command("upgrade")
@guarded
def upgrade(
    db: DbOption = None, workflow: WorkflowOption = None, json_out: JsonOption = False
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
    workflow: WorkflowOption = None,
    json_out: JsonOption = False,
) -> None:
    """Drop raw calls, candidate texts, critiques and evidence older than a cutoff (keeps
    aggregates), then vacuum."""
    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        fail(f"--older-than: {exc}")
    with _open(db, workflow, migrate=True) as store:
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
