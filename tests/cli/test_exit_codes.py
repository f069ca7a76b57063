"""Exit statuses scripts can rely on (apex/cli/exits.py, docs/cli.md): one per outcome, and
``goal start`` refuses what would fail later before the goal exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apex.cli import exits
from apex.cli.main import app
from apex.goals.store import GoalStore
from apex.store import EvidenceStore
from apex.testing import Fail, InProcessServer, Reply, roles, workflow_toml

runner = CliRunner()
PANEL = ("m1", "m2", "m3")


def lab(tmp_path: Path, base_url: str, extra: str = "") -> str:
    path = tmp_path / "lab.toml"
    path.write_text(
        workflow_toml(base_url, PANEL, settings="max_retries = 0\ntimeout_s = 5") + extra
    )
    return str(path)


def answers(inproc: InProcessServer, text: str = "the answer is 42", met: bool = True) -> None:
    for model in PANEL:
        inproc.default(model, Reply(text))
    inproc.default("judge", roles.judge("42", goal_met=met))


def goals(tmp_path: Path) -> list[str]:
    db = f"sqlite:///{tmp_path / 'goals.db'}"
    listed = runner.invoke(app, ["goal", "list", "--db", db])
    return [line for line in listed.stdout.splitlines() if "Reach" in line]


def test_every_status_is_distinct() -> None:
    codes = [v for k, v in vars(exits).items() if k.startswith("EXIT_")]
    assert len(codes) == len(set(codes)) and exits.EXIT_NOT_RECORDED == 3


def test_bad_input_is_2_and_a_failed_run_is_1(inproc: InProcessServer, tmp_path: Path) -> None:
    bad = runner.invoke(app, ["fuse", "q", "-w", str(tmp_path / "nope.toml")])
    assert bad.exit_code == exits.EXIT_BAD_INPUT and bad.stderr.startswith("error: ")
    for model in PANEL:
        inproc.default(model, Fail(500))
    failed = runner.invoke(app, ["fuse", "q", "-w", lab(tmp_path, inproc.base_url), "--json"])
    assert failed.exit_code == exits.EXIT_FAILED


def test_an_unreachable_provider_is_9(tmp_path: Path) -> None:
    dead = lab(tmp_path, "http://127.0.0.1:9/v1")
    result = runner.invoke(app, ["fuse", "q", "-w", dead, "--no-record"])
    assert result.exit_code == exits.EXIT_UNREACHABLE, result.output
    assert "connection" in result.stdout  # the reason is on screen, not only in --json


def test_goal_start_exits_with_its_state(inproc: InProcessServer, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'goals.db'}"
    answers(inproc)
    path = lab(tmp_path, inproc.base_url)
    done = runner.invoke(app, ["goal", "start", "Reach 42", "-w", path, "--db", db])
    assert done.exit_code == exits.EXIT_OK, done.output
    answers(inproc, met=False)
    limited = runner.invoke(
        app, ["goal", "start", "Reach 42", "-w", path, "--db", db, "--max-cycles", "1"]
    )
    assert limited.exit_code == exits.EXIT_BUDGET_LIMITED, limited.output
    inproc.default("judge", roles.judge("42", goal_met=False, blocker="no data on 42"))
    blocked = runner.invoke(app, ["goal", "start", "Reach 42", "-w", path, "--db", db])
    assert blocked.exit_code == exits.EXIT_BLOCKED, blocked.output
    for model in PANEL:
        inproc.default(model, Fail(503))
    outage = runner.invoke(app, ["goal", "start", "Reach 42", "-w", path, "--db", db])
    assert outage.exit_code == exits.EXIT_INTERRUPTED, outage.output


def test_goal_start_checks_keys_before_creating_the_goal(
    inproc: InProcessServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAB_KEY", raising=False)
    text = workflow_toml(inproc.base_url, PANEL).replace(
        f'base_url = "{inproc.base_url}"',
        f'base_url = "{inproc.base_url}"\napi_key_env = "LAB_KEY"',
    )
    path = tmp_path / "keyed.toml"
    path.write_text(text)
    db = f"sqlite:///{tmp_path / 'goals.db'}"
    result = runner.invoke(app, ["goal", "start", "Reach 42", "-w", str(path), "--db", db])
    assert result.exit_code == exits.EXIT_BAD_INPUT
    assert "LAB_KEY" in result.stderr and len(result.stderr.splitlines()) == 1
    assert goals(tmp_path) == [] and inproc.requests == []


def test_a_verifier_that_does_not_exist_is_refused(inproc: InProcessServer, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'goals.db'}"
    args = ["goal", "start", "Reach 42", "-w", lab(tmp_path, inproc.base_url), "--db", db]
    result = runner.invoke(app, [*args, "--verify", "no-such-checker --strict"])
    assert result.exit_code == exits.EXIT_BAD_INPUT
    assert "no-such-checker" in result.stderr and len(result.stderr.splitlines()) == 1
    assert goals(tmp_path) == [] and inproc.requests == []


def test_a_crashing_verifier_is_reported_on_screen(inproc: InProcessServer, tmp_path: Path) -> None:
    answers(inproc)
    db = f"sqlite:///{tmp_path / 'goals.db'}"
    crash = "sh -c 'echo verifier exploded: KeyError >&2; exit 70'"
    args = ["goal", "start", "Reach 42", "-w", lab(tmp_path, inproc.base_url), "--db", db]
    result = runner.invoke(app, [*args, "--verify", crash, "--max-cycles", "1"])
    assert result.exit_code == exits.EXIT_BUDGET_LIMITED, result.output
    assert "verifier exploded: KeyError" in result.stdout


def test_fuse_json_still_prints_on_failure(inproc: InProcessServer, tmp_path: Path) -> None:
    for model in PANEL:
        inproc.default(model, Fail(500))
    result = runner.invoke(app, ["fuse", "q", "-w", lab(tmp_path, inproc.base_url), "--json"])
    assert json.loads(result.stdout)["synthesis_path"] == "all_panel_failed"


@pytest.mark.parametrize(
    ("requested", "status"), [("paused", exits.EXIT_PAUSED), ("cancelled", exits.EXIT_CANCELLED)]
)
def test_a_goal_paused_or_cancelled_while_it_runs_exits_with_that_state(
    inproc: InProcessServer, tmp_path: Path, requested: str, status: int
) -> None:
    db = f"sqlite:///{tmp_path / 'goals.db'}"
    store = EvidenceStore(db)

    def m1(_body: dict[str, Any]) -> Reply:  # another process asks while cycle 1 runs
        (goal,) = GoalStore(store).all()
        if goal.state == "active":  # only once: the first answer of cycle 1
            GoalStore(store).request(goal.spec.id, requested, ["active"])  # type: ignore[arg-type]
        return Reply("the answer is 41")

    answers(inproc, met=False)
    inproc.default("m1", m1)
    args = ["goal", "start", "Reach 42", "-w", lab(tmp_path, inproc.base_url), "--db", db]
    result = runner.invoke(app, [*args, "--max-cycles", "5"])
    assert result.exit_code == status, result.output
    (goal,) = GoalStore(store).all()
    assert goal.state == requested and len(goal.cycles) == 1  # stopped at the cycle boundary
    store.close()
