"""Bad input gets one line naming the input and the fix: no traceback, nothing accepted silently.

Every case runs through the CLI runner and must print exactly one ``error:`` line on stderr and
exit non-zero, before any model is called.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apex.cli.main import app
from apex.store import EvidenceStore
from apex.testing import TestServer, roles, workflow_toml
from tests.conftest import lab_toml
from tests.hardening.conftest import one_line_error

runner = CliRunner()


@pytest.fixture
def lab(server: TestServer, tmp_path: Path) -> str:
    """A lab workflow file on the test server, every model answering."""
    for model in ("m1", "m2", "m3"):
        server.default(model, "Paris.")
    server.default("judge", roles.judge("Paris"))
    path = tmp_path / "lab.toml"
    path.write_text(lab_toml(server.base_url))
    return str(path)


def fuse_error(*args: str) -> str:
    return one_line_error(runner.invoke(app, ["fuse", *args, "--no-record"]))


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ('{"prompt": "caf\xe9?"}\n'.encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 15)"),
        ('{"prompt": "q"}\n'.encode("utf-16"), "the file is UTF-16"),
    ],
    ids=["latin-1", "utf-16"],
)
def test_a_batch_file_that_is_not_utf8(
    lab: str, server: TestServer, tmp_path: Path, data: bytes, says: str
) -> None:
    batch = tmp_path / "items.jsonl"
    batch.write_bytes(data)
    line = fuse_error("--batch", str(batch), "-w", lab)
    assert str(batch) in line and says in line and "save it as UTF-8" in line
    assert not server.requests


def test_a_batch_file_with_a_byte_order_mark_is_read(lab: str, tmp_path: Path) -> None:
    batch = tmp_path / "items.jsonl"
    batch.write_bytes('{"id": "q1", "prompt": "Capital of France?"}\n'.encode("utf-8-sig"))
    result = runner.invoke(app, ["fuse", "--batch", str(batch), "-w", lab, "--no-record"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] == "q1"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ("name = 'caf\xe9'\n".encode("latin-1"), "not UTF-8 text"),
        ("name = 'lab'\n".encode("utf-16"), "the file is UTF-16"),
    ],
    ids=["latin-1", "utf-16"],
)
def test_a_workflow_file_that_is_not_utf8(tmp_path: Path, data: bytes, says: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(data)
    line = fuse_error("q", "-w", str(path))
    assert str(path) in line and says in line and "save it as UTF-8" in line


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ({"prompt": "q", "category": 7}, '"category" must be a non-empty string (got 7)'),
        ({"prompt": "q", "category": ""}, '"category" must be a non-empty string'),
        ({"prompt": "q", "id": {"a": 1}}, '"id" must be a string or a whole number'),
        ({"prompt": "q", "expected": [1]}, '"expected" must be a string or a whole number'),
        ({"prompt": "  "}, '"prompt" is empty'),
    ],
)
def test_a_batch_line_with_a_bad_field(
    lab: str, server: TestServer, tmp_path: Path, item: dict[str, object], says: str
) -> None:
    batch = tmp_path / "items.jsonl"
    batch.write_text(json.dumps({"prompt": "fine"}) + "\n" + json.dumps(item) + "\n")
    line = fuse_error("--batch", str(batch), "-w", lab)
    assert f"{batch}:2:" in line and says in line
    assert not server.requests


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("quorum = 4", "quorum = 4 is larger than the panel (3 members)"),
        ("timeout_s = inf", "timeout_s: Input should be a finite number"),
        ("timeout_s = nan", "timeout_s: Input should be a finite number"),
        ("timeout_s = 1e9", "timeout_s: Input should be less than or equal to 3600"),
        ("max_retries = 1000000", "max_retries: Input should be less than or equal to 10"),
        ("cooldown_s = inf", "cooldown_s: Input should be a finite number"),
    ],
)
def test_a_workflow_setting_out_of_range(
    server: TestServer, tmp_path: Path, setting: str, says: str
) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(workflow_toml(server.base_url, settings=setting))
    line = fuse_error("q", "-w", str(path))
    assert f"{path}: {says}" in line
    assert not server.requests


def test_a_panel_override_below_the_quorum(server: TestServer, tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(workflow_toml(server.base_url, settings="quorum = 2"))
    line = fuse_error("q", "-w", str(path), "--panel", "lab:m1")
    assert "given panel" in line and "quorum = 2 is larger than the panel (1 member)" in line
    assert not server.requests


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--panel", "", "--panel '': give at least one provider:model"),
        ("--panel", " , ", "--panel ' , ': give at least one provider:model"),
        ("--judge", "", "--judge '': give the judge as provider:model"),
        ("--category", " ", "--category '': give a category name"),
    ],
)
def test_an_empty_option(lab: str, server: TestServer, option: str, value: str, says: str) -> None:
    line = fuse_error("q", "-w", lab, option, value)
    assert says in line
    assert not server.requests


@pytest.mark.parametrize(
    ("age", "says"),
    [
        ("99999999999d", "'99999999999d' is too long; give at most 36500d"),
        ("36501d", "'36501d' is too long"),
        ("soon", "'soon' is not a duration"),
    ],
)
def test_a_prune_age_out_of_range(tmp_path: Path, age: str, says: str) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    line = one_line_error(runner.invoke(app, ["db", "prune", "--older-than", age, "--db", url]))
    assert line.startswith("error: --older-than: ") and says in line


def test_pruning_everything_needs_yes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    EvidenceStore(url).close()
    for age in ("0d", "0s", "23h"):
        line = one_line_error(runner.invoke(app, ["db", "prune", "--older-than", age, "--db", url]))
        assert f"--older-than {age} would prune (nearly) every run" in line and "--yes" in line
    done = runner.invoke(app, ["db", "prune", "--older-than", "0d", "--yes", "--db", url])
    assert done.exit_code == 0, done.output
    kept = runner.invoke(app, ["db", "prune", "--older-than", "1d", "--db", url])
    assert kept.exit_code == 0, kept.output


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--budget-usd", "0", "--budget-usd 0: give a positive amount in USD"),
        ("--budget-usd", "-1", "--budget-usd -1: give a positive amount in USD"),
        ("--budget-usd", "nan", "--budget-usd nan: give a positive amount in USD"),
        ("--max-tokens", "0", "--max-tokens 0: give a positive number of tokens"),
        ("--max-tokens", "-5", "--max-tokens -5: give a positive number of tokens"),
        ("--max-cycles", "0", "--max-cycles 0: give at least 1"),
        ("--deadline", "0m", "--deadline 0m: that moment has already passed"),
        ("--deadline", "2020-01-01T00:00:00+00:00", "that moment has already passed"),
    ],
)
def test_a_goal_limit_out_of_range(
    lab: str, tmp_path: Path, option: str, value: str, says: str
) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    args = ["goal", "start", "Reach 42", "-w", lab, "--db", db, option, value]
    line = one_line_error(runner.invoke(app, args))
    assert says in line
    assert (
        not (tmp_path / "g.db").exists()
        or "g-" not in runner.invoke(app, ["goal", "list", "--db", db]).stdout
    )  # refused before the goal was created
