"""``apex goal``: start, resume, pause, cancel, status, list and show goal loops."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from apex.cli.common import console, fail, guarded, print_json, run
from apex.cli.db_cmd import parse_duration
from apex.goals.loop import GoalEvent
from apex.goals.runner import Goal, resume
from apex.goals.store import GoalStore
from apex.goals.types import GoalStatus, Limits
from apex.goals.verify import VerifierSpec
from apex.graph.types import Candidate
from apex.store import EvidenceStore, apex_home
from apex.workflow import DEFAULT_WORKFLOW, workflow_text

app = typer.Typer(help="Goal loops: fusion cycles until a goal is met or a limit is reached.")
DbOption = Annotated[str | None, typer.Option(help="Store URL (else APEX_DB, else default).")]


def parse_deadline(value: str) -> datetime:
    """``--deadline``: a duration from now (``30m``, ``2h``) or an ISO time (UTC if naive)."""
    try:
        return datetime.now(UTC) + parse_duration(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--deadline: '{value}' is neither a duration (30m, 2h, 1d) nor an ISO time")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_verifier(command: str | None, match: str | None) -> VerifierSpec | None:
    """The verifier of ``--verify CMD`` or ``--match REGEX`` (one line on a bad one)."""
    if command and match:
        fail("give either --verify or --match, not both")
    if command:
        return VerifierSpec(kind="command", value=command)
    if match:
        try:
            re.compile(match)
        except re.error as exc:
            fail(f"--match is not a valid regex: {exc}")
        return VerifierSpec(kind="regex", value=match)
    return None


class _Progress:
    """Prints a goal's progress: cycles, each panel member, cost so far."""

    def __init__(self) -> None:
        self.cost = 0.0

    def __call__(self, event: GoalEvent) -> None:
        if event.kind == "cycle_started":
            console.print(f"[bold]cycle {event.cycle}[/bold]")
        elif event.kind == "candidate" and isinstance(event.data, Candidate):
            cand = event.data
            mark = "ok" if cand.ok else f"failed: {cand.failure.kind if cand.failure else '?'}"
            console.print(f"  {cand.model:<36} {mark:<24} {cand.call.latency_s:6.2f}s")
        elif event.kind == "cycle_finished":
            summary = event.data
            self.cost += summary.cost_usd or 0.0
            verdict = {True: "met", False: "not met", None: "-"}
            console.print(
                f"  judge: {verdict[summary.judge_met]} · verifier: {verdict[summary.verified]}"
                f" · blocker: {summary.blocker or '-'} · cost so far ${self.cost:.4f}"
            )
        elif event.kind == "state":
            console.print(f"goal {event.goal_id}: {event.data}")


def _store(db: str | None) -> EvidenceStore:
    return EvidenceStore(db)


def _show_status(status: GoalStatus) -> None:
    console.print(f"goal {status.spec.id}: [bold]{status.state}[/bold] {status.reason}")
    console.print(
        f"cycles {len(status.cycles)} · cost ${status.cost_usd:.4f} · tokens {status.tokens}"
    )


@app.command("start")
@guarded
def start(
    objective: Annotated[str, typer.Argument(help="What to achieve.")],
    criteria: Annotated[str, typer.Option(help="How to tell it is achieved.")] = "",
    verify: Annotated[str | None, typer.Option(help="Shell command; exit 0 means met.")] = None,
    match: Annotated[str | None, typer.Option(help="Regex the answer must contain.")] = None,
    max_cycles: Annotated[int, typer.Option(min=1, help="At most this many cycles.")] = 10,
    budget_usd: Annotated[float | None, typer.Option(help="Spend at most this (USD).")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Use at most this many tokens.")] = None,
    deadline: Annotated[str | None, typer.Option(help="30m, 2h, or an ISO time.")] = None,
    workflow: Annotated[str, typer.Option("--workflow", "-w")] = DEFAULT_WORKFLOW,
    category: Annotated[str | None, typer.Option(help="Task category for evidence.")] = None,
    detach: Annotated[bool, typer.Option(help="Run in the background; print the id.")] = False,
    db: DbOption = None,
) -> None:
    """Start a goal: prints its id, then live progress (unless --detach)."""
    limits = Limits(
        max_cycles=max_cycles,
        budget_usd=budget_usd,
        max_tokens=max_tokens,
        deadline=parse_deadline(deadline) if deadline else None,
    )
    text, source = workflow_text(workflow)
    del text  # validated here, before the goal exists
    goal = Goal(
        objective,
        criteria=criteria,
        category=category,
        workflow=source,
        limits=limits,
        verifier=parse_verifier(verify, match),
        store=_store(db),
        on_event=None if detach else _Progress(),
    )
    goal.create()
    console.print(goal.id, markup=False, highlight=False)
    if detach:
        _spawn_resume(goal.id, db)
        return
    from apex.goals.runner import drive

    _show_status(run(drive(goal.spec, goal.store, None, goal.on_event)))


def _spawn_resume(goal_id: str, db: str | None) -> None:
    """Run ``apex goal resume ID`` in a detached background process, logging to APEX_HOME."""
    logs = apex_home() / "goals"
    logs.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "apex.cli.main", "goal", "resume", goal_id]
    if db:
        command += ["--db", db]
    with (logs / f"{goal_id}.log").open("ab") as log:
        subprocess.Popen(
            command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            env=os.environ.copy(),
        )  # fmt: skip
    console.print(f"[dim]running in the background; log: {logs / f'{goal_id}.log'}[/dim]")


@app.command("resume")
@guarded
def resume_command(goal_id: str, db: DbOption = None) -> None:
    """Resume a paused goal, or one whose process died, from where it stopped."""
    _show_status(run(resume(goal_id, store=_store(db), on_event=_Progress())))


@app.command("pause")
@guarded
def pause(goal_id: str, db: DbOption = None) -> None:
    """Pause a goal at its next cycle boundary (resume continues it)."""
    status = GoalStore(_store(db)).request(goal_id, "paused", ["active"])
    console.print(f"goal {goal_id}: {status.state}")


@app.command("cancel")
@guarded
def cancel(goal_id: str, db: DbOption = None) -> None:
    """Cancel a goal: it stops at its next cycle boundary and cannot be resumed."""
    status = GoalStore(_store(db)).request(goal_id, "cancelled", ["active", "paused"])
    console.print(f"goal {goal_id}: {status.state}")


@app.command("status")
@guarded
def status_command(
    goal_id: str, db: DbOption = None, json_out: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """A goal's state, cycles and totals."""
    status = GoalStore(_store(db)).status(goal_id)
    if json_out:
        print_json(status.model_dump(mode="json"))
        return
    _show_status(status)


@app.command("list")
@guarded
def list_command(
    state: Annotated[str | None, typer.Option(help="Only goals in this state.")] = None,
    db: DbOption = None,
) -> None:
    """Every goal, newest first."""
    table = Table("id", "state", "cycles", "cost", "objective")
    for status in GoalStore(_store(db)).all(state):
        table.add_row(
            status.spec.id,
            status.state,
            str(len(status.cycles)),
            f"${status.cost_usd:.4f}",
            status.spec.objective[:60],
        )
    console.print(table)


@app.command("show")
@guarded
def show(goal_id: str, db: DbOption = None) -> None:
    """A table per cycle (summary, verdict, blocker, cost), then the best answer."""
    status = GoalStore(_store(db)).status(goal_id)
    _show_status(status)
    table = Table("cycle", "answer", "judge", "verifier", "blocker", "cost", title="cycles")
    verdict = {True: "met", False: "not met", None: "-"}
    for c in status.cycles:
        table.add_row(
            str(c.cycle),
            " ".join(c.answer.split())[:60],
            verdict[c.judge_met],
            verdict[c.verified],
            c.blocker[:30] or "-",
            "?" if c.cost_usd is None else f"${c.cost_usd:.4f}",
        )
    console.print(table)
    console.print("[bold]best answer[/bold]")
    console.print(status.best_answer or "(none yet)", markup=False, highlight=False)
