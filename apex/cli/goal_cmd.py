"""``apex goal``: start, resume, pause, cancel, status, list and show goal loops."""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args

import typer

from apex.cli.common import DbOption, StoreWorkflow, bad_input, console, guarded, print_json, run
from apex.cli.db_cmd import parse_duration
from apex.cli.exits import goal_exit

if TYPE_CHECKING:
    from apex.goals.loop import GoalEvent
    from apex.goals.store import GoalStore
    from apex.goals.types import GoalStatus, Limits
    from apex.goals.verify import VerifierSpec
    from apex.store import EvidenceStore

DEFAULT_WORKFLOW = "local"
"""The workflow a goal uses unless -w names one (``apex.workflow.DEFAULT_WORKFLOW``)."""
TERMINAL_STATES = frozenset({"complete", "budget_limited", "blocked", "failed", "cancelled"})
"""Goal states nothing resumes (``apex.goals.types.TERMINAL_STATES``, checked by a test)."""

app = typer.Typer(help="Goal loops: fusion cycles until a goal is met or a limit is reached.")


def parse_deadline(value: str) -> datetime:
    """``--deadline``: a duration from now (``30m``, ``2h``) or an ISO time with a time zone."""
    try:
        return datetime.now(UTC) + parse_duration(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        bad_input(f"--deadline: '{value}' is neither a duration (30m, 2h, 1d) nor an ISO time")
    if moment.tzinfo is None:
        bad_input(
            f"--deadline: '{value}' has no time zone; add one (e.g. {value}+01:00 or {value}Z) "
            "or give a duration such as 2h"
        )
    return moment


def parse_limits(
    max_cycles: int, budget_usd: float | None, max_tokens: int | None, deadline: str | None
) -> Limits:
    """The goal's limits from CLI options, each bad one refused in one line."""
    from pydantic import ValidationError

    from apex.goals.types import Limits

    if max_cycles < 1:
        bad_input(f"--max-cycles {max_cycles}: give at least 1")
    if budget_usd is not None and not (math.isfinite(budget_usd) and budget_usd > 0):
        bad_input(
            f"--budget-usd {budget_usd:g}: give a positive amount in USD, e.g. --budget-usd 0.50"
        )
    if max_tokens is not None and max_tokens < 1:
        bad_input(
            f"--max-tokens {max_tokens}: give a positive number of tokens, e.g. --max-tokens 20000"
        )
    moment = parse_deadline(deadline) if deadline else None
    if moment is not None and moment <= datetime.now(UTC):
        bad_input(f"--deadline {deadline}: that moment has already passed; give a duration above 0 "
             "such as 30m, or a time to come")  # fmt: skip
    try:
        return Limits(
            max_cycles=max_cycles, budget_usd=budget_usd, max_tokens=max_tokens, deadline=moment
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        bad_input(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}")


def missing_program(command: str) -> str | None:
    """Why ``command``'s program cannot run (not found, not executable), or None when it can.

    The shell itself answers (``command -v``), so builtins, functions and paths all count.
    """
    try:
        words = shlex.split(command)
    except ValueError as exc:
        return f"cannot be parsed ({exc})"
    words = [w for w in words if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", w)]
    if not words:
        return "names no program"
    found = subprocess.run(
        ["sh", "-c", 'command -v -- "$1"', "sh", words[0]], capture_output=True, check=False
    )
    return None if found.returncode == 0 else f"no program {words[0]!r} on PATH"


def parse_verifier(command: str | None, match: str | None) -> VerifierSpec | None:
    """The verifier of ``--verify CMD`` or ``--match REGEX`` (one line on a bad one)."""
    from apex.goals.verify import VerifierSpec

    if command and match:
        bad_input("give either --verify or --match, not both")
    if command:
        missing = missing_program(command)
        if missing:
            bad_input(f"--verify {command!r}: {missing}; give a command that exists")
        return VerifierSpec(kind="command", value=command)
    if match:
        try:
            re.compile(match)
        except re.error as exc:
            bad_input(f"--match is not a valid regex: {exc}")
        return VerifierSpec(kind="regex", value=match)
    return None


class _Progress:
    """Prints a goal's progress: cycles, each panel member, cost so far."""

    def __init__(self) -> None:
        self.cost = 0.0

    def __call__(self, event: GoalEvent) -> None:
        if event.kind == "cycle_started":
            console.print(f"[bold]cycle {event.cycle}[/bold]")
        elif event.kind == "candidate" and hasattr(event.data, "call"):
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
            if summary.verified is False and summary.feedback.strip():
                for line in summary.feedback.strip().splitlines()[:3]:  # the verifier's first
                    console.print(f"  verifier: {line[:160]}", markup=False, highlight=False)
        elif event.kind == "state":
            console.print(f"goal {event.goal_id}: {event.data}")


def _store(db: str | None, workflow: str | None = None, *, write: bool = False) -> EvidenceStore:
    """--db, else APEX_DB, else the workflow's ``db`` key (the default workflow's too); a named
    store that does not exist is created only by ``goal start``."""
    from apex.cli.stores import open_store
    from apex.workflow import load_workflow

    return open_store(db, load_workflow(workflow).db, write=write)


def _goals(store: EvidenceStore) -> GoalStore:
    """The goal rows of ``store``."""
    from apex.goals.store import GoalStore

    return GoalStore(store)


def _show_status(status: GoalStatus) -> None:
    console.print(
        f"goal {status.spec.id}: [bold]{status.state}[/bold] {status.reason}", highlight=False
    )
    if status.holder:
        console.print(f"run by {status.holder}", markup=False, highlight=False)
    elif status.state not in TERMINAL_STATES and status.state != "queued":
        console.print("no live process holds it; `apex goal resume` continues it", highlight=False)
    console.print(
        f"cycles {len(status.cycles)} · cost ${status.cost_usd:.4f} · tokens {status.tokens}"
    )


@app.command("start")
@guarded
def start(
    objective: Annotated[
        str | None, typer.Argument(help="What to achieve; - reads it from stdin.")
    ] = None,
    prompt_file: Annotated[
        Path | None, typer.Option("--prompt-file", help="Read the objective from this file.")
    ] = None,
    criteria: Annotated[str, typer.Option(help="How to tell it is achieved.")] = "",
    verify: Annotated[str | None, typer.Option(help="Shell command; exit 0 means met.")] = None,
    match: Annotated[str | None, typer.Option(help="Regex the answer must contain.")] = None,
    max_cycles: Annotated[int, typer.Option(help="At most this many cycles.")] = 10,
    budget_usd: Annotated[float | None, typer.Option(help="Spend at most this (USD).")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Use at most this many tokens.")] = None,
    deadline: Annotated[str | None, typer.Option(help="30m, 2h, or an ISO time.")] = None,
    workflow: Annotated[str, typer.Option("--workflow", "-w")] = DEFAULT_WORKFLOW,
    category: Annotated[str | None, typer.Option(help="Task category for evidence.")] = None,
    detach: Annotated[
        bool,
        typer.Option(help="Run in the background (on the queue when a worker serves the store)."),
    ] = False,
    queue: Annotated[
        bool, typer.Option("--queue", help="Put it on the queue for `apex worker`; print the id.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Start a goal: prints its id, then live progress (unless --detach or --queue)."""
    from apex.cli.fuse_cmd import read_prompt
    from apex.fusion import check_workflow
    from apex.goals.lease import Holder
    from apex.goals.runner import Goal, drive
    from apex.models.client import ModelClient
    from apex.workers.registry import live_workers
    from apex.workflow import parse_workflow, workflow_text

    wanted = read_prompt(objective, prompt_file)
    if wanted is None or not wanted.strip():
        bad_input("give the OBJECTIVE (- reads stdin) or --prompt-file F")
    limits = parse_limits(max_cycles, budget_usd, max_tokens, deadline)
    verifier = parse_verifier(verify, match)
    text, source = workflow_text(workflow)
    wf = parse_workflow(text, source)
    check_workflow(wf, ModelClient(wf.client_settings))  # providers and keys, before the goal
    store = _store(db, source, write=True)
    goal = Goal(
        wanted,
        criteria=criteria,
        category=category,
        workflow=source,
        limits=limits,
        verifier=verifier,
        store=store,
        on_event=None if detach or queue else _Progress(),
    )
    workers = live_workers(store) if detach and not queue else []
    if queue or workers:
        goal.enqueue()
        console.print(goal.id, markup=False, highlight=False)
        live = len(workers or live_workers(store))
        console.print(f"[dim]queued; {live} live worker(s) serve {store.masked_url}[/dim]")
        return
    goal.create()
    console.print(goal.id, markup=False, highlight=False)
    if detach:
        _spawn_resume(goal.id, db)
        return
    holder = Holder("apex goal start")
    _finish(run(drive(goal.spec, goal.store, None, goal.on_event, holder=holder)))


def _finish(status: GoalStatus) -> None:
    """Show where the goal stands and exit with its state's status (see apex/cli/exits.py)."""
    _show_status(status)
    raise typer.Exit(goal_exit(status.state))


def _spawn_resume(goal_id: str, db: str | None) -> None:
    """Run ``apex goal resume ID`` in a detached background process, logging to APEX_HOME."""
    from apex.store import apex_home

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
def resume_command(
    goal_id: str,
    db: DbOption = None,
    workflow: StoreWorkflow = None,
    queue: Annotated[bool, typer.Option("--queue", help="Hand it to `apex worker`.")] = False,
) -> None:
    """Resume a paused or interrupted goal, or one whose process died, from where it stopped."""
    from apex.goals.lease import Holder
    from apex.goals.queue import enqueue
    from apex.goals.runner import resume

    store = _store(db, workflow)
    if queue:
        status = _goals(store).status(goal_id)
        if status.state in TERMINAL_STATES:
            bad_input(f"goal {goal_id} is {status.state} ({status.reason}); nothing to resume")
        enqueue(store, status.spec)
        console.print(f"goal {goal_id}: queued")
        return
    holder = Holder("apex goal resume")
    _finish(run(resume(goal_id, store=store, on_event=_Progress(), holder=holder)))


@app.command("pause")
@guarded
def pause(goal_id: str, db: DbOption = None, workflow: StoreWorkflow = None) -> None:
    """Pause a goal at its next cycle boundary (resume continues it)."""
    status = _goals(_store(db, workflow)).request(
        goal_id, "paused", ["active", "queued", "interrupted"]
    )
    console.print(f"goal {goal_id}: {status.state}")


@app.command("cancel")
@guarded
def cancel(goal_id: str, db: DbOption = None, workflow: StoreWorkflow = None) -> None:
    """Cancel a goal: it stops at its next cycle boundary and cannot be resumed."""
    status = _goals(_store(db, workflow)).request(
        goal_id, "cancelled", ["active", "paused", "queued", "interrupted"]
    )
    console.print(f"goal {goal_id}: {status.state}")


@app.command("status")
@guarded
def status_command(
    goal_id: str,
    db: DbOption = None,
    workflow: StoreWorkflow = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A goal's state, cycles and totals."""
    status = _goals(_store(db, workflow)).status(goal_id)
    if json_out:
        print_json(status.model_dump(mode="json"))
        return
    _show_status(status)


@app.command("list")
@guarded
def list_command(
    state: Annotated[str | None, typer.Option(help="Only goals in this state.")] = None,
    schedule: Annotated[str | None, typer.Option(help="Only goals of this schedule.")] = None,
    db: DbOption = None,
    workflow: StoreWorkflow = None,
) -> None:
    """Every goal, newest first."""
    from rich.table import Table

    from apex.goals.types import GoalStateName

    states = get_args(GoalStateName)
    if state is not None and state not in states:
        bad_input(f"--state {state!r}: not a goal state; use one of {', '.join(states)}")
    table = Table("id", "state", "cycles", "cost", "objective")
    for status in _goals(_store(db, workflow)).all(state, schedule):
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
def show(goal_id: str, db: DbOption = None, workflow: StoreWorkflow = None) -> None:
    """A table per cycle (summary, verdict, blocker, cost), then the best answer."""
    from rich.table import Table

    status = _goals(_store(db, workflow)).status(goal_id)
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
