"""Goal lifecycle for workers: errors that can pass leave a goal interrupted and resumable,
providers and keys are checked before the first cycle, a deadline needs a time zone, the
workflow's db key finds the store, and goals go on the queue."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

import apex
from apex.cli.exits import EXIT_BAD_INPUT
from apex.cli.main import app
from apex.errors import GoalError
from apex.goals.runner import Goal, resume
from apex.goals.store import GoalStore
from apex.goals.types import Limits
from apex.goals.verify import VerifierSpec
from apex.store import EvidenceStore
from apex.testing import Fail, InProcessServer, Reply, roles, workflow_toml
from apex.workers.registry import WorkerRegistry

PANEL = ("m1", "m2", "m3")


def write(tmp_path: Path, text: str, name: str = "life.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    return EvidenceStore(f"sqlite:///{tmp_path / 'apex.db'}")


async def test_a_missing_key_interrupts_before_any_call_and_the_goal_resumes(
    inproc: InProcessServer, store: EvidenceStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inproc.default("judge", roles.judge("42", goal_met=True))
    text = workflow_toml(inproc.base_url, PANEL).replace(
        f'base_url = "{inproc.base_url}"',
        f'base_url = "{inproc.base_url}"\napi_key_env = "LAB_KEY"',
    )
    monkeypatch.delenv("LAB_KEY", raising=False)
    goal = Goal("Reach 42", workflow=write(tmp_path, text), store=store)
    status = await goal.run()
    assert status.state == "interrupted" and "set the environment variable LAB_KEY" in status.reason
    assert status.cycles == [] and inproc.requests == []  # resolved before the first cycle
    monkeypatch.setenv("LAB_KEY", "lab-secret-key")
    done = await resume(goal.id, store=store)
    assert done.state == "complete" and len(done.cycles) == 1


async def test_a_provider_outage_interrupts_and_counts_toward_no_limit(
    inproc: InProcessServer, store: EvidenceStore, tmp_path: Path
) -> None:
    for model in PANEL:
        inproc.script(model, Fail(503))
        inproc.default(model, Reply("the answer is 42"))
    inproc.default("judge", roles.judge("42", goal_met=True))
    path = write(tmp_path, workflow_toml(inproc.base_url, PANEL))
    goal = Goal("Reach 42", workflow=path, store=store, limits=Limits(max_cycles=1))
    status = await goal.run()
    assert status.state == "interrupted" and status.reason.startswith("provider outage")
    assert [c.outage for c in status.cycles] == [True]  # the failures are still evidence
    assert store.get("lab:m1", "general").consecutive_failures == 1
    done = await resume(goal.id, store=store)  # max_cycles 1: the outage did not use it up
    assert done.state == "complete" and [c.outage for c in done.cycles] == [True, False]


def test_a_deadline_without_a_time_zone_is_refused(tmp_path: Path, inproc: InProcessServer) -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Limits(deadline="2027-01-01T09:00")  # type: ignore[arg-type]
    path = write(tmp_path, workflow_toml(inproc.base_url, PANEL))
    result = CliRunner().invoke(
        app, ["goal", "start", "x", "-w", path, "--deadline", "2027-01-01T09:00"]
    )
    assert result.exit_code == EXIT_BAD_INPUT and len(result.stderr.splitlines()) == 1
    assert "'2027-01-01T09:00' has no time zone; add one (e.g. 2027-01-01T09:00+01:00" in (
        result.stderr
    )


def test_the_workflows_db_key_finds_the_goal(tmp_path: Path, inproc: InProcessServer) -> None:
    inproc.default("judge", roles.judge("42", goal_met=True))
    db = tmp_path / "from-workflow.db"
    path = write(tmp_path, f'db = "sqlite:///{db}"\n' + workflow_toml(inproc.base_url, PANEL))
    runner = CliRunner()
    started = runner.invoke(app, ["goal", "start", "Reach 42", "-w", path])
    assert started.exit_code == 0, started.output
    goal_id = started.stdout.split()[0]
    assert db.exists() and not (Path(os.environ["APEX_HOME"]) / "apex.db").exists()
    shown = runner.invoke(app, ["goal", "status", goal_id, "-w", path])
    assert shown.exit_code == 0 and "complete" in shown.stdout
    elsewhere = runner.invoke(app, ["goal", "status", goal_id])  # the default store has none
    assert elsewhere.exit_code == 1 and f"no goal '{goal_id}'" in elsewhere.stderr
    with pytest.raises(GoalError, match=f"goal {goal_id} is complete"):  # found there
        asyncio.run(apex.resume(goal_id, workflow=path))


def test_goals_go_on_the_queue(
    store: EvidenceStore, tmp_path: Path, inproc: InProcessServer
) -> None:
    path = write(tmp_path, workflow_toml(inproc.base_url, PANEL))
    goal_id = Goal(
        "Reach 42", workflow=path, store=store, verifier=VerifierSpec(kind="regex", value="42")
    ).enqueue()
    status = GoalStore(store).status(goal_id)
    assert status.state == "queued" and status.queued
    assert GoalStore(store).runnable() == [(goal_id, None)]
    with pytest.raises(GoalError, match="cannot take a Python verifier"):
        Goal("x", workflow=path, store=store, verifier=lambda a: True).enqueue()
    runner, db = CliRunner(), ["--db", store.url]
    queued = runner.invoke(app, ["goal", "start", "Reach 42", "-w", path, "--queue", *db])
    assert queued.exit_code == 0 and "queued; 0 live worker(s)" in queued.stdout
    assert GoalStore(store).status(queued.stdout.split()[0]).state == "queued"
    WorkerRegistry(store, stale_s=30).register("w-test", os.getpid(), 1, exclusive=True)
    detached = runner.invoke(app, ["goal", "start", "Reach 42", "-w", path, "--detach", *db])
    assert detached.exit_code == 0 and "queued; 1 live worker(s)" in detached.stdout
    assert inproc.requests == []  # nothing ran here: the worker will
    stopped = Goal("Reach 42", workflow=path, store=store)
    stopped.create()  # no process runs it: it reads as interrupted
    again = runner.invoke(app, ["goal", "resume", stopped.id, "--queue", *db])
    assert again.exit_code == 0 and again.stdout.strip() == f"goal {stopped.id}: queued"
    assert GoalStore(store).status(stopped.id).state == "queued"
