"""``apex status``: workers alive (heartbeat age), queue depth, running goals, next firings."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from apex.cli.common import DbOption, StoreWorkflow, console, guarded, print_json


@guarded
def status_command(
    db: DbOption = None,
    workflow: StoreWorkflow = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Workers alive, queue depth, running goals and the next schedule firings."""
    from apex.cli.stores import open_store  # the stack behind the command, not its --help
    from apex.store.tables import utcnow
    from apex.workers.status import status
    from apex.workflow import load_workflow

    store = open_store(db, load_workflow(workflow).db, write=False)
    now, found = utcnow(), status(store)
    if json_out:
        print_json(asdict(found))
        return
    console.print(
        f"{found.backend} {store.masked_url} · {len(found.workers)} worker(s) alive · "
        f"{found.queued} goal(s) queued · {found.interrupted} interrupted, waiting for a retry",
        markup=False,
        highlight=False,
    )
    workers = Table("worker", "host", "pid", "state", "concurrency", "heartbeat", title="workers")
    for w in found.workers:
        age = (now - w.heartbeat_at).total_seconds()
        workers.add_row(w.id, w.host, str(w.pid), w.state, str(w.concurrency), f"{age:.1f}s ago")
    running = Table("goal", "run by", "heartbeat", "cycles", "objective", title="running goals")
    for r in found.running:
        running.add_row(r.goal_id, r.holder, f"{r.heartbeat_age_s:.1f}s ago", str(r.cycles),
                        r.objective[:50])  # fmt: skip
    firings = Table("schedule", "rule", "state", "next firing (UTC)", "last", title="schedules")
    for f in found.firings:
        when = f"{f.next_fire_at:%Y-%m-%d %H:%M:%S}" if f.state == "active" else "-"
        firings.add_row(f.schedule, f.rule, f.state, when, f.note or "-")
    for table in (workers, running, firings):
        console.print(table)
