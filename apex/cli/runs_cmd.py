"""``apex runs``: the recorded runs, newest first, with the ids ``apex feedback`` takes."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from apex.cli.common import DbOption, StoreWorkflow, bad_input, console, guarded, print_json

DEFAULT_LIMIT = 20


def recent_runs(db: str | None, workflow: str | None, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` newest runs of the store: id, time, workflow, category, status, path,
    cost, prompt and answer (each text as recorded)."""
    import sqlalchemy as sa

    from apex.cli.stores import open_store
    from apex.store.engine import read_transaction
    from apex.store.tables import RUNS
    from apex.workflow import load_workflow

    columns = ["run_id", "created_at", "workflow", "category", "status", "synthesis_path"]
    columns += ["cost_usd", "prompt", "answer"]
    workflow_db = load_workflow(workflow).db if workflow else None
    with open_store(db, workflow_db, write=False, read_only=True) as store:
        query = sa.select(*(RUNS.c[c] for c in columns)).order_by(RUNS.c.created_at.desc())
        with read_transaction(store.engine) as conn:
            rows = conn.execute(query.limit(limit)).mappings().all()
    return [dict(row) for row in rows]


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@guarded
def runs(
    limit: Annotated[int, typer.Option(help="Show at most this many runs.")] = DEFAULT_LIMIT,
    db: DbOption = None,
    workflow: StoreWorkflow = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """Recorded runs, newest first: the ids `apex feedback RUN_ID` takes."""
    if limit < 1:
        bad_input(f"--limit {limit}: give at least 1")
    rows = recent_runs(db, workflow, limit)
    if json_out:
        print_json(rows)
        return
    if not rows:
        console.print("no runs recorded yet; `apex fuse` records one")
        return
    from rich.table import Table

    table = Table("run", "when", "path", "prompt", "answer")
    for row in rows:
        table.add_row(
            str(row["run_id"]),
            f"{row['created_at']:%m-%d %H:%M}",
            str(row["synthesis_path"]),
            _one_line(str(row["prompt"]), 24),
            _one_line(str(row["answer"]), 24),
        )
    console.print(table)
