"""The CLI through typer's runner: version, models, ask, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apex import __version__
from apex.cli.exits import EXIT_BAD_INPUT, EXIT_UNREACHABLE
from apex.cli.main import app
from apex.testing import Reply, TestServer
from tests.conftest import lab_toml

runner = CliRunner()


def write_lab(tmp_path: Path, server: TestServer, extra: str = "") -> str:
    path = tmp_path / "lab.toml"
    path.write_text(lab_toml(server.base_url, extra))
    return str(path)


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.stdout


def test_ask_json(server: TestServer, tmp_path: Path) -> None:
    server.script("m1", Reply("Paris", cost=0.001))
    result = runner.invoke(
        app, ["ask", "lab:m1", "capital?", "-w", write_lab(tmp_path, server), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["text"] == "Paris" and data["tokens"] == 15 and data["cost_usd"] == 0.001
    assert data["latency_s"] > 0


def test_ask_human(server: TestServer, tmp_path: Path) -> None:
    server.script("m1", Reply("Paris"))
    result = runner.invoke(app, ["ask", "lab:m1", "capital?", "-w", write_lab(tmp_path, server)])
    assert result.exit_code == 0
    assert (
        "Paris" in result.stdout
        and "15 tokens" in result.stdout
        and "cost unknown" in result.stdout
    )


def test_models_checks_reachability(server: TestServer, tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "-w", write_lab(tmp_path, server), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["provider"]: r for r in json.loads(result.stdout)}
    assert rows["lab"]["status"] == "reachable" and "lab:m1" in rows["lab"]["models"]
    assert rows["openrouter"]["status"] == "no key"
    assert rows["openrouter"]["detail"] == "set OPENROUTER_API_KEY"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ask", "nosuch:m", "hi"], "unknown provider 'nosuch'"),
        (["ask", "openrouter:deepseek/deepseek-v4-pro", "hi"], "OPENROUTER_API_KEY"),
        (["ask", "lab:m1", "hi", "-w", "missing.toml"], "missing.toml"),
    ],
)
def test_one_line_errors(args: list[str], needle: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_BAD_INPUT
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("error: ")


def test_unreachable_base_url(tmp_path: Path) -> None:
    path = tmp_path / "dead.toml"
    path.write_text(lab_toml("http://127.0.0.1:9/v1").replace("max_retries = 2", "max_retries = 0"))
    result = runner.invoke(app, ["ask", "lab:m1", "hi", "-w", str(path)])
    assert result.exit_code == EXIT_UNREACHABLE
    assert "connection" in result.stderr and "127.0.0.1:9" in result.stderr


def test_bad_workflow_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        'name = "x"\nquorum = "many"\n[[panel]]\nmodel = "a:b"\n[judge]\nmodel = "a:b"\n'
    )
    result = runner.invoke(app, ["models", "-w", str(path)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert str(path) in result.stderr and "quorum" in result.stderr


def test_models_is_readable_at_80_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: TestServer
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    path = tmp_path / "lab.toml"
    path.write_text(lab_toml(server.base_url))
    result = runner.invoke(app, ["models", "-w", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert server.base_url in result.stdout and "set OPENROUTER_API_KEY" in result.stdout
    assert "lab:m1, lab:m2, lab:m3" in result.stdout  # nothing cut with an ellipsis
    assert "…" not in result.stdout
