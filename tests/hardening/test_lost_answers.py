"""Nothing lost, nothing silent: a full disk or a damaged database never costs a paid-for answer.

The answer is printed, the command exits 3 with one line saying what failed and what to do, and
the run waits in ``$APEX_HOME/spool/`` until ``apex db recover`` (or the next successful write)
records it, exactly once. ``apex db check`` finds a damaged file; a healthy one is still readable
on a read-only file system.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from apex.cli.common import EXIT_NOT_RECORDED
from apex.cli.main import app
from apex.store import EvidenceStore, head_revision, migrate
from apex.store.engine import create_store_engine
from apex.store.tables import CALLS, EVIDENCE, RUNS
from apex.testing import Reply, TestServer, roles
from tests.conftest import lab_toml
from tests.hardening.conftest import SmallFS, one_line_error

runner = CliRunner()


def lab_file(tmp_path: Path, server: TestServer) -> str:
    path = tmp_path / "lab.toml"
    path.write_text(lab_toml(server.base_url))
    return str(path)


def answer(server: TestServer, panel: Any = "Paris is the capital of France.") -> None:
    for model in ("m1", "m2", "m3"):
        server.default(model, panel)
    server.default("judge", roles.judge("Paris"))


def spooled() -> list[Path]:
    return sorted((Path(os.environ["APEX_HOME"]) / "spool").glob("*.json"))


def counts(url: str, run_id: str) -> tuple[int, int, int]:
    """How many times the run, its calls and its evidence rows are stored."""
    with EvidenceStore(url) as store, store.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).where(t.c.run_id == run_id)).scalar_one()
            for t in (RUNS, CALLS, EVIDENCE)
        )


def fuse_json(wf: str, url: str) -> Any:
    return runner.invoke(app, ["fuse", "Capital of France?", "-w", wf, "--db", url, "--json"])


def test_a_disk_that_fills_mid_run(server: TestServer, small_fs: SmallFS, tmp_path: Path) -> None:
    url = f"sqlite:///{small_fs.path / 'apex.db'}"
    EvidenceStore(url).close()  # a healthy store on the small disk
    filled: list[Path] = []
    lock = threading.Lock()

    def fill_then_answer(_body: dict[str, Any]) -> Reply:
        with lock:  # the disk fills while the panel answers: after the store was read
            filled or filled.append(small_fs.fill())
        return Reply("Paris is the capital of France.")

    answer(server, fill_then_answer)
    wf = lab_file(tmp_path, server)
    result = fuse_json(wf, url)
    assert result.exit_code == EXIT_NOT_RECORDED
    data = json.loads(result.stdout)
    assert data["answer"] == "Paris" and data["recorded"] is False
    line = one_line_error(result)
    assert "the disk is full" in line and "apex db recover" in line and data["run_id"] in line
    assert [p.stem for p in spooled()] == [data["run_id"]]
    assert len(server.requests_for("judge")) == 1  # paid for once, kept

    filled[0].unlink()  # space again: the next successful write records the spooled run too
    second = fuse_json(wf, url)
    assert second.exit_code == 0, second.output
    assert spooled() == []
    first_counts = counts(url, data["run_id"])
    assert first_counts == counts(url, json.loads(second.stdout)["run_id"])
    assert first_counts[0] == 1 and first_counts[1] == 4 and first_counts[2] >= 4
    again = runner.invoke(app, ["db", "recover", "--db", url, "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["recorded"] == []
    assert counts(url, data["run_id"]) == first_counts


def damage(path: Path, table: str) -> None:
    """Overwrite the b-tree pages of ``table`` and its indexes with garbage."""
    with sqlite3.connect(path) as conn:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        roots = [
            r
            for (r,) in conn.execute(
                "SELECT rootpage FROM sqlite_master WHERE tbl_name=?", (table,)
            )
        ]
    conn.close()
    with path.open("r+b") as out:
        for root in roots:
            out.seek((root - 1) * page)
            out.write(b"\xa5" * page)


def test_a_damaged_database(server: TestServer, tmp_path: Path) -> None:
    answer(server)
    wf = lab_file(tmp_path, server)
    db = tmp_path / "apex.db"
    url = f"sqlite:///{db}"
    assert fuse_json(wf, url).exit_code == 0
    backup = tmp_path / "backup.db"
    shutil.copy(db, backup)
    assert runner.invoke(app, ["db", "check", "--db", url]).exit_code == 0
    damage(db, "runs")

    result = fuse_json(wf, url)
    assert result.exit_code == EXIT_NOT_RECORDED
    data = json.loads(result.stdout)
    assert data["answer"] == "Paris" and data["recorded"] is False
    line = one_line_error(result)
    assert "damaged" in line and "apex db check" in line and "apex db recover" in line
    assert [p.stem for p in spooled()] == [data["run_id"]]
    checked = runner.invoke(app, ["db", "check", "--db", url])
    assert "problem(s)" in one_line_error(checked) and "restore it from a backup" in checked.stderr

    shutil.copy(backup, db)  # what the message says: restore, then recover
    recovered = runner.invoke(app, ["db", "recover", "--db", url, "--json"])
    assert recovered.exit_code == 0, recovered.output
    assert json.loads(recovered.stdout)["recorded"] == [data["run_id"]]
    assert spooled() == []
    stored = counts(url, data["run_id"])
    assert stored[0] == 1 and stored[1] == 4
    assert runner.invoke(app, ["db", "recover", "--db", url]).exit_code == 0
    assert counts(url, data["run_id"]) == stored
    ok = runner.invoke(app, ["db", "check", "--db", url])
    assert ok.exit_code == 0 and "ok (quick_check)" in ok.stdout


def test_a_read_only_file_system(server: TestServer, small_fs: SmallFS, tmp_path: Path) -> None:
    answer(server)
    wf = lab_file(tmp_path, server)
    url = f"sqlite:///{small_fs.path / 'apex.db'}"
    assert fuse_json(wf, url).exit_code == 0
    small_fs.read_only()
    evidence = runner.invoke(app, ["evidence", "--db", url, "--json"])
    assert evidence.exit_code == 0, evidence.output
    assert {m["model"] for m in json.loads(evidence.stdout)["models"]} >= {"lab:m1", "lab:judge"}
    assert runner.invoke(app, ["db", "check", "--db", url]).exit_code == 0
    before = len(server.requests)
    line = one_line_error(fuse_json(wf, url))
    assert "apex.db" in line and "writable" in line
    assert len(server.requests) == before  # refused before any paid call


def test_apex_home_on_a_read_only_file_system(
    small_fs: SmallFS, monkeypatch: Any, tmp_path: Path
) -> None:
    small_fs.read_only()
    monkeypatch.setenv("APEX_HOME", str(small_fs.path / "home"))
    line = one_line_error(runner.invoke(app, ["evidence"]))
    assert "APEX_HOME" in line and "Read-only file system" in line and "writable" in line


def test_apex_home_that_cannot_be_a_directory(monkeypatch: Any, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("APEX_HOME", str(tmp_path / "a-file" / "home"))
    line = one_line_error(runner.invoke(app, ["db", "upgrade"]))
    assert "APEX_HOME" in line and "set APEX_HOME to a writable directory" in line


def test_a_read_only_command_still_migrates_an_old_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_store_engine(url)
    migrate.upgrade(engine, "0003")
    engine.dispose()
    result = runner.invoke(app, ["evidence", "--db", url, "--json"])
    assert result.exit_code == 0, result.output
    with EvidenceStore(url, migrate=False) as store:
        assert store.revision() == head_revision()


def test_a_batch_on_a_damaged_database_prints_every_answer(
    server: TestServer, tmp_path: Path
) -> None:
    answer(server)
    wf = lab_file(tmp_path, server)
    db = tmp_path / "apex.db"
    url = f"sqlite:///{db}"
    assert fuse_json(wf, url).exit_code == 0
    backup = tmp_path / "backup.db"
    shutil.copy(db, backup)
    damage(db, "runs")
    batch = tmp_path / "items.jsonl"
    batch.write_text("".join(json.dumps({"id": i, "prompt": f"Q{i}?"}) + "\n" for i in "ab"))
    result = runner.invoke(app, ["fuse", "--batch", str(batch), "-w", wf, "--db", url])
    assert result.exit_code == EXIT_NOT_RECORDED
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(x["id"] for x in lines) == ["a", "b"]
    assert all(x["answer"] == "Paris" and x["recorded"] is False for x in lines)
    assert "2 run(s) were not recorded" in one_line_error(result)
    assert sorted(p.stem for p in spooled()) == sorted(x["run_id"] for x in lines)
    shutil.copy(backup, db)
    recovered = runner.invoke(app, ["db", "recover", "--db", url, "--json"])
    assert sorted(json.loads(recovered.stdout)["recorded"]) == sorted(x["run_id"] for x in lines)
    assert [counts(url, x["run_id"])[0] for x in lines] == [1, 1]
