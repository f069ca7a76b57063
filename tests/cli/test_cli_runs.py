"""``apex runs``: the recorded runs, newest first, whose ids ``apex feedback`` takes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from apex.cli.main import app
from apex.testing import InProcessServer, Reply, roles, workflow_toml

runner = CliRunner()


def test_runs_lists_what_fuse_recorded_and_feedback_takes_its_id(
    inproc: InProcessServer, tmp_path: Path
) -> None:
    for model in ("m1", "m2"):
        inproc.default(model, Reply("Paris"))
    inproc.default("judge", roles.judge("Paris"))
    path = tmp_path / "lab.toml"
    path.write_text(workflow_toml(inproc.base_url, ("m1", "m2")))
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    ids = []
    for prompt in ("Capital of France?", "And of Peru?"):
        out = runner.invoke(app, ["fuse", prompt, "-w", str(path), "--db", db, "--json"])
        ids.append(json.loads(out.stdout)["run_id"])
    listed = runner.invoke(app, ["runs", "--db", db, "--json", "--limit", "1"])
    assert listed.exit_code == 0, listed.output
    (newest,) = json.loads(listed.stdout)
    assert newest["run_id"] == ids[1] and newest["prompt"] == "And of Peru?"
    table = runner.invoke(app, ["runs", "--db", db])
    assert table.exit_code == 0 and "Capital" in table.stdout
    unknown = runner.invoke(app, ["feedback", "nope", "--correct", "--db", db])
    assert unknown.exit_code == 1 and "apex runs" in unknown.stderr
