"""Input a script can give: which store ``--db`` means, clear refusals of bad options and files,
prompts from standard input or a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apex.cli.exits import EXIT_BAD_INPUT
from apex.cli.fuse_cmd import MAX_OPTIONS
from apex.cli.main import app
from apex.testing import InProcessServer, Reply, roles, workflow_toml
from apex.workflow import MAX_OPTIONS as WORKFLOW_MAX_OPTIONS

runner = CliRunner()


@pytest.fixture
def lab(inproc: InProcessServer, tmp_path: Path) -> str:
    for model in ("m1", "m2"):
        inproc.default(model, lambda body: Reply(f"echo: {body['messages'][-1]['content'][-40:]}"))
    inproc.default("judge", roles.judge("Paris"))
    path = tmp_path / "lab.toml"
    path.write_text(workflow_toml(inproc.base_url, ("m1", "m2")))
    return str(path)


def one_line(result: object, needle: str) -> None:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.exit_code == EXIT_BAD_INPUT, stderr  # type: ignore[attr-defined]
    assert len(stderr.splitlines()) == 1 and needle in stderr, stderr


def test_a_named_store_that_does_not_exist(lab: str, tmp_path: Path) -> None:
    typo = tmp_path / "evidnce.db"
    for command in (["evidence"], ["goal", "list"], ["runs"], ["db", "check"], ["status"]):
        one_line(runner.invoke(app, [*command, "--db", str(typo)]), "no store is there")
    assert not typo.exists()
    missing_dir = tmp_path / "no" / "such" / "dir" / "apex.db"
    one_line(runner.invoke(app, ["fuse", "q", "-w", lab, "--db", str(missing_dir)]), "folder")
    assert not missing_dir.parent.exists()
    made = runner.invoke(app, ["fuse", "q", "-w", lab, "--db", str(typo), "--json"])
    assert made.exit_code == 0 and typo.is_file()  # a writing command creates it
    assert runner.invoke(app, ["evidence", "--db", str(typo)]).exit_code == 0


def test_the_default_store_is_created_on_first_use(lab: str, tmp_path: Path) -> None:
    assert runner.invoke(app, ["fuse", "q", "-w", lab, "--json"]).exit_code == 0
    assert (tmp_path / "apex-home" / "apex.db").is_file()


def test_an_apex_db_that_does_not_exist_is_refused_by_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APEX_DB", str(tmp_path / "gone.db"))
    one_line(runner.invoke(app, ["evidence"]), "APEX_DB")


def test_bad_options_and_files_are_one_line(lab: str, tmp_path: Path) -> None:
    one_line(runner.invoke(app, ["goal", "list", "--state", "bogus"]), "--state 'bogus'")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    one_line(runner.invoke(app, ["fuse", "--batch", str(empty), "-w", lab]), "no items")
    both = runner.invoke(app, ["fuse", "a prompt", "--batch", str(empty), "-w", lab])
    one_line(both, "not both")
    assert MAX_OPTIONS == WORKFLOW_MAX_OPTIONS


def test_prompts_from_stdin_and_from_a_file(lab: str, tmp_path: Path) -> None:
    long_prompt = "Why is the sky blue? " + "x" * 300_000 + " END"
    out = runner.invoke(app, ["fuse", "-", "-w", lab, "--json"], input=long_prompt)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["candidates"][0]["text"].endswith("END")
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("From a file: FILE-END", encoding="utf-8")
    out = runner.invoke(app, ["fuse", "--prompt-file", str(prompt), "-w", lab, "--json"])
    assert json.loads(out.stdout)["candidates"][0]["text"].endswith("FILE-END")
    goal = runner.invoke(
        app, ["goal", "start", "-", "-w", lab, "--max-cycles", "1"], input="Reach STDIN-GOAL"
    )
    assert goal.exit_code in (0, 4), goal.output
    goal_id = goal.stdout.splitlines()[0]
    status = runner.invoke(app, ["goal", "status", goal_id, "--json"])
    assert json.loads(status.stdout)["spec"]["objective"] == "Reach STDIN-GOAL", status.output
