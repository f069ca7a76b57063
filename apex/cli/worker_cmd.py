"""``apex worker``: run queued goals and schedule firings; live status, or JSON lines."""

from __future__ import annotations

import json
import sys
from collections import deque
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from apex.cli.common import DbOption, StoreWorkflow, guarded, run
from apex.goals.heartbeat import DEFAULT_HEARTBEAT_S
from apex.workers.settings import DEFAULT_CONCURRENCY, DEFAULT_GRACE_S

if TYPE_CHECKING:
    from apex.workers import WorkerEvent

RECENT = 12
"""Events the live display keeps."""


def _json_line(event: WorkerEvent) -> None:
    """One JSON object per event on stdout (when stdout is not a terminal, or with --json)."""
    line = {"event": event.kind, "worker": event.worker, "goal": event.goal, **event.detail}
    line["at"] = event.at.isoformat()
    sys.stdout.write(json.dumps(line, default=str) + "\n")
    sys.stdout.flush()


class _LiveStatus:
    """A rich live panel: the worker, the goals it runs, counters and the latest events."""

    def __init__(self) -> None:
        self.live = Live(Text("starting..."), refresh_per_second=4, transient=False)
        self.header = ""
        self.running: dict[str, str] = {}
        self.counts: dict[str, int] = {"finished": 0, "fired": 0, "retried": 0}
        self.recent: deque[str] = deque(maxlen=RECENT)

    def __call__(self, event: WorkerEvent) -> None:
        detail = event.detail
        if event.kind == "worker_started":
            self.header = (
                f"apex worker {event.worker} · {detail['backend']} {detail['db']} · "
                f"concurrency {detail['concurrency']}"
            )
            self.live.start()
        elif event.kind == "goal_started" and event.goal:
            self.running[event.goal] = str(detail.get("objective", ""))
        elif event.kind in ("goal_finished", "goal_interrupted") and event.goal:
            self.running.pop(event.goal, None)
            self.counts["finished" if event.kind == "goal_finished" else "retried"] += 1
        elif event.kind == "schedule_fired":
            self.counts["fired"] += 1
        what = " ".join(f"{k}={v}" for k, v in detail.items() if k not in ("objective", "db"))
        self.recent.append(f"{event.at:%H:%M:%S} {event.kind} {event.goal or ''} {what}")
        self.live.update(self._render())
        if event.kind == "worker_stopped":
            self.live.stop()

    def _render(self) -> Group:
        table = Table("running goal", "objective", title=None, expand=True)
        for goal, objective in self.running.items():
            table.add_row(goal, objective)
        counts = " · ".join(f"{name} {n}" for name, n in self.counts.items())
        log = Text("\n".join(self.recent), style="dim")
        return Group(Text(self.header, style="bold"), Text(counts), table, log)


@guarded
def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, help="Goals this worker runs at once.")
    ] = DEFAULT_CONCURRENCY,
    db: DbOption = None,
    workflow: StoreWorkflow = None,
    grace: Annotated[
        float,
        typer.Option(min=0, help="On SIGTERM / Ctrl-C: seconds for cycles to reach a checkpoint."),
    ] = DEFAULT_GRACE_S,
    heartbeat: Annotated[
        float,
        typer.Option(min=0.1, help="Heartbeat period (s); 4 missed beats mean a dead worker."),
    ] = DEFAULT_HEARTBEAT_S,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON line per event.")] = False,
) -> None:
    """Run queued goals and schedule firings until SIGTERM or Ctrl-C (then exit 0).

    One worker per SQLite database; any number on PostgreSQL, on any number of machines.
    """
    from apex.store import EvidenceStore  # the stack behind the command, not its --help
    from apex.workers import WorkerSettings, run_worker
    from apex.workflow import load_workflow

    store = EvidenceStore(db, workflow_db=load_workflow(workflow).db)
    settings = WorkerSettings(concurrency=concurrency, grace_s=grace, heartbeat_s=heartbeat)
    display = _json_line if json_out or not sys.stdout.isatty() else _LiveStatus()
    run(run_worker(store, settings, on_event=display))
