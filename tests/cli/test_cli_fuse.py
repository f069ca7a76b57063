"""``apex fuse`` through the CLI runner: one prompt, a batch of 20, and the local model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apex.cli.exits import EXIT_BAD_INPUT
from apex.cli.main import app
from apex.testing import Reply, TestServer, roles
from tests.conftest import lab_toml

runner = CliRunner()


def lab_file(tmp_path: Path, server: TestServer, extra: str = "") -> str:
    path = tmp_path / "lab.toml"
    path.write_text(lab_toml(server.base_url, extra + '\n[[critics]]\nmodel = "lab:critic"\n'))
    return str(path)


def script(server: TestServer) -> None:
    for model in ("m1", "m2", "m3"):
        server.default(model, Reply(f"{model} says Paris", cost=0.001))
    server.default("critic", lambda b: Reply(roles.critic()(b), cost=0.001))
    server.default("judge", lambda b: Reply(roles.judge("Paris")(b), cost=0.002))


def test_fuse_json_shape(server: TestServer, tmp_path: Path) -> None:
    script(server)
    result = runner.invoke(
        app, ["fuse", "Capital of France?", "-w", lab_file(tmp_path, server), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answer"] == "Paris" and data["synthesis_path"] == "judge" and data["run_id"]
    assert set(data["analysis"]) >= {
        "consensus",
        "contradictions",
        "partial_coverage",
        "unique_insights",
        "blind_spots",
    }
    for cand in data["candidates"]:
        assert {"label", "model", "ok", "error", "latency_s", "tokens", "cost_usd"} <= set(cand)
    assert data["cost_usd"] == pytest.approx(0.006)


def test_fuse_human_output(server: TestServer, tmp_path: Path) -> None:
    script(server)
    result = runner.invoke(app, ["fuse", "Capital?", "-w", lab_file(tmp_path, server)])
    assert result.exit_code == 0, result.output
    assert "Paris" in result.stdout and "consensus" in result.stdout and "judge" in result.stdout


def test_fuse_overrides_panel_and_judge(server: TestServer, tmp_path: Path) -> None:
    script(server)
    server.default("other-judge", roles.judge("from override"))
    args = [
        "fuse",
        "q",
        "-w",
        lab_file(tmp_path, server),
        "--panel",
        "lab:m1,lab:m2",
        "--judge",
        "lab:other-judge",
        "--critic",
        "",
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answer"] == "from override" and len(data["candidates"]) == 2
    assert not server.requests_for("critic")


def test_fuse_batch_of_twenty(server: TestServer, tmp_path: Path) -> None:
    script(server)
    batch = tmp_path / "items.jsonl"
    batch.write_text(
        "\n".join(
            json.dumps(
                {"id": f"q{i}", "prompt": f"question {i}", "category": "geo", "expected": "Paris"}
            )
            for i in range(20)
        )
    )
    result = runner.invoke(
        app, ["fuse", "--batch", str(batch), "-w", lab_file(tmp_path, server), "--concurrency", "5"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(line["id"] for line in lines) == sorted(f"q{i}" for i in range(20))
    assert all(line["answer"] == "Paris" and line["category"] == "geo" for line in lines)
    assert all(line["expected"] == "Paris" for line in lines)
    assert len(server.requests_for("judge")) == 20


def test_batch_bad_line_is_one_line_error(tmp_path: Path, server: TestServer) -> None:
    batch = tmp_path / "bad.jsonl"
    batch.write_text('{"prompt": "ok"}\n{"id": 2}\n')
    result = runner.invoke(app, ["fuse", "--batch", str(batch), "-w", lab_file(tmp_path, server)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert f"{batch}:2" in result.stderr and '"prompt"' in result.stderr


def test_all_failed_exits_nonzero(server: TestServer, tmp_path: Path) -> None:
    from apex.testing import Fail

    for model in ("m1", "m2", "m3"):
        server.default(model, Fail(500))
    result = runner.invoke(app, ["fuse", "q", "-w", lab_file(tmp_path, server), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["synthesis_path"] == "all_panel_failed"


@pytest.mark.slow
def test_fuse_local_workflow_offline() -> None:
    result = runner.invoke(app, ["fuse", "Why is the sky blue?", "--workflow", "local", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answer"].strip() and data["synthesis_path"] not in ("all_panel_failed",)
    assert len(data["candidates"]) == 3 and all(c["ok"] for c in data["candidates"])
    assert {c["model"] for c in data["candidates"]} == {"local:smollm2"}
