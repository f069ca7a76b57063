"""``apex evidence`` through typer's runner: the leaderboard, weights, store URL resolution."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apex.cli.exits import EXIT_BAD_INPUT
from apex.cli.main import app
from apex.evidence import GLOBAL_CATEGORY, panel_weights
from apex.store import EvidenceStore
from tests.conftest import lab_toml
from tests.store.factories import events_for, fusion_result, record_fusion, verdict

runner = CliRunner()


def fill(url: str) -> None:
    """Two runs of lab:m1..m3 in math (m3 timed out), then verdicts: m1 right, m2 wrong."""
    with EvidenceStore(url) as store:
        for run_id in ("run-1", "run-2"):
            result = fusion_result(run_id)
            record_fusion(store, result, events_for(result))
        store.apply([verdict("lab:m1", "math", True) for _ in range(6)])
        store.apply([verdict("lab:m2", "math", False) for _ in range(6)])
        store.apply([verdict("lab:m1", "law", False) for _ in range(2)])


def evidence_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["evidence", *args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_leaderboard_json_with_weights(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ev.db'}"
    fill(url)
    data = evidence_json("--db", url)
    assert data["db"] == url and data["category"] == GLOBAL_CATEGORY
    rows = {r["model"]: r for r in data["models"]}
    assert data["models"][0]["model"] == "lab:m1"  # most accurate first
    assert set(rows) >= {"lab:m1", "lab:m2", "lab:m3"}
    assert rows["lab:m3"]["failures_by_kind"] == {"timeout": 2} and rows["lab:m3"]["calls"] == 2
    assert rows["lab:m3"]["failure_rate"] == pytest.approx(1.0)
    assert rows["lab:m1"]["calls"] == 2 and rows["lab:m1"]["failures"] == 0
    assert rows["lab:m1"]["judge_mean"] == pytest.approx(0.9, abs=0.01)
    assert rows["lab:m1"]["accuracy"] == pytest.approx(0.75, abs=0.01)  # 6 of 8 overall
    assert rows["lab:m2"]["accuracy"] == pytest.approx(0.0)
    assert rows["lab:m3"]["accuracy"] is None
    with EvidenceStore(url) as store:
        expected = panel_weights(store, list(rows), GLOBAL_CATEGORY)  # relative to all on record
    for model, row in rows.items():
        assert row["weight"] == pytest.approx(expected[model])
    assert rows["lab:m1"]["weight"] > rows["lab:m2"]["weight"]


def test_category_uses_the_category_record(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ev.db'}"
    fill(url)
    math = evidence_json("--db", url, "--category", "math")
    law = evidence_json("--db", url, "--category", "law")
    assert math["category"] == "math" and law["category"] == "law"
    assert {r["model"] for r in law["models"]} == {"lab:m1"}
    m1_math = next(r for r in math["models"] if r["model"] == "lab:m1")
    m1_law = law["models"][0]
    assert m1_math["accuracy"] == pytest.approx(1.0) and m1_law["accuracy"] == pytest.approx(0.0)
    with EvidenceStore(url) as store:
        expected = panel_weights(store, [r["model"] for r in law["models"]], "law")["lab:m1"]
    assert m1_law["weight"] == pytest.approx(expected)
    assert m1_law["weight"] < m1_math["weight"]


def test_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ev.db'}"
    fill(url)
    result = runner.invoke(app, ["evidence", "--db", url])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "evidence, all categories" in out and "timeout 2" in out
    line = next(x for x in out.splitlines() if "lab:m1" in x)
    assert "75.0% (8)" in line and "0.0%" in line and "0.90 (2)" in line


def test_empty_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert runner.invoke(app, ["db", "upgrade", "--db", url]).exit_code == 0  # a new, empty store
    result = runner.invoke(app, ["evidence", "--db", url])
    assert result.exit_code == 0, result.output
    assert "no evidence yet in" in result.stdout
    result = runner.invoke(app, ["evidence", "--db", url, "--category", "math"])
    assert "no evidence for category math yet" in result.stdout
    assert evidence_json("--db", url)["models"] == []


def test_store_url_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wf_db, env_db, flag_db = (tmp_path / f"{n}.db" for n in ("wf", "env", "flag"))
    fill(f"sqlite:///{wf_db}")
    workflow = tmp_path / "wf.toml"
    workflow.write_text(f'db = "{wf_db}"\n' + lab_toml("http://127.0.0.1:9/v1"))
    data = evidence_json("-w", str(workflow))
    assert data["db"] == f"sqlite:///{wf_db}" and len(data["models"]) >= 3
    for named in (env_db, flag_db):  # a named store is read only once it exists
        runner.invoke(app, ["db", "upgrade", "--db", str(named)])
    monkeypatch.setenv("APEX_DB", str(env_db))
    assert evidence_json("-w", str(workflow))["db"] == f"sqlite:///{env_db}"
    assert evidence_json("--db", str(flag_db))["db"] == f"sqlite:///{flag_db}"
    monkeypatch.delenv("APEX_DB")
    home = evidence_json()["db"]  # the default: $APEX_HOME/apex.db (a temp dir in tests)
    assert home.startswith("sqlite:///") and home.endswith("apex-home/apex.db")


def test_unknown_workflow_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["evidence", "-w", str(tmp_path / "nope.toml")])
    assert result.exit_code == EXIT_BAD_INPUT
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope.toml" in lines[0] and lines[0].startswith("error: ")
