"""``apex db upgrade`` and ``apex db prune`` through the CLI runner."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apex.cli.db_cmd import parse_duration
from apex.cli.exits import EXIT_BAD_INPUT
from apex.cli.main import app
from apex.store import EvidenceStore, head_revision
from tests.store.factories import events_for, fusion_result, record_fusion

runner = CliRunner()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1.5D", timedelta(days=1.5)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "90", "d", "90x", "-5d", "ninety days"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_upgrade_default_db() -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "migrated empty -> 0005 (head)" in result.stdout and "apex.db" in result.stdout
    again = runner.invoke(app, ["db", "upgrade", "--json"])
    assert json.loads(again.stdout)["from"] == head_revision()


def test_upgrade_explicit_db(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = runner.invoke(app, ["db", "upgrade", "--db", url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"db": url, "from": None, "to": head_revision()}


def test_upgrade_uses_the_workflow_db(tmp_path: Path) -> None:
    target = tmp_path / "wf.db"
    workflow = tmp_path / "wf.toml"
    workflow.write_text(
        f'name = "wf"\nsynthesis = "vote"\ndb = "sqlite:///{target}"\n[[panel]]\nmodel = "x:y"\n'
    )
    result = runner.invoke(app, ["db", "upgrade", "-w", str(workflow)])
    assert result.exit_code == 0, result.output
    assert target.is_file()


def test_prune(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with EvidenceStore(url) as store:
        result = fusion_result()
        record_fusion(store, result, events_for(result))
    kept = runner.invoke(app, ["db", "prune", "--older-than", "90d", "--db", url, "--json"])
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout)["runs"] == 0
    human = runner.invoke(app, ["db", "prune", "--older-than", "0s", "--yes", "--db", url])
    assert human.exit_code == 0, human.output
    assert "1 runs, 5 calls" in human.stdout and "aggregates kept" in human.stdout


def test_prune_bad_duration_is_one_line() -> None:
    result = runner.invoke(app, ["db", "prune", "--older-than", "soon"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr.strip().splitlines() == [
        "error: --older-than: 'soon' is not a duration; use a number and a unit: "
        "90d, 12h, 30m, 45s or 2w"
    ]


def test_unreachable_db_is_one_line() -> None:
    result = runner.invoke(app, ["db", "upgrade", "--db", "postgresql://u:pw1234@127.0.0.1:1/x"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: postgresql+psycopg://u:***@127.0.0.1:1/x"
    )
    assert "pw1234" not in result.stderr
