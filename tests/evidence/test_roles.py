"""Evidence per (model, role): a model's work as judge or critic never touches its panel seat."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apex.cli.main import app
from apex.fusion import fuse
from apex.store import EvidenceStore
from apex.testing import Fail, TestServer, roles, workflow_toml
from apex.workflow import parse_workflow

runner = CliRunner()


def is_structured(body: dict[str, Any]) -> bool:
    """Judge and critic requests ask for JSON; panel requests do not."""
    return "response_format" in body


async def test_a_failing_judge_does_not_bench_its_panel_seat(
    server: TestServer, tmp_path: Path
) -> None:
    # "both" sits on the panel and judges; as judge it never returns valid JSON.
    server.default("both", lambda b: "not json at all" if is_structured(b) else "Paris")
    server.default("m2", "Paris")
    server.default("m3", "Paris")
    text = workflow_toml(
        server.base_url,
        ("both", "m2", "m3"),
        judge="both",
        settings="allow_self_judge = true\nmax_retries = 0\ncooldown_failures = 3",
    )
    wf = parse_workflow(text, "roles.toml")
    db = f"sqlite:///{tmp_path / 'roles.db'}"
    with EvidenceStore(db) as store:
        for i in range(3):
            result = await fuse(f"Q{i}", workflow=wf, store=store)
            assert result.synthesis_path == "vote_fallback"  # the judge failed twice each time
        judge = store.get("lab:both", "*", role="judge")
        panel = store.get("lab:both", "*")
        assert judge.consecutive_failures == 6 and judge.last_failure_kind == "schema_mismatch"
        assert panel.consecutive_failures == 0 and panel.failures_total == 0
        fourth = await fuse("Q4", workflow=wf, store=store)
    seat = next(c for c in fourth.candidates if c.model == "lab:both")
    assert seat.ok and seat.label is not None  # not in cool-down
    out = runner.invoke(app, ["evidence", "--db", db, "--json"])
    rows = {(r["model"], r["role"]): r for r in json.loads(out.stdout)["models"]}
    assert rows[("lab:both", "judge")]["failures_by_kind"] == {"schema_mismatch": 8}
    assert rows[("lab:both", "judge")]["weight"] is None
    assert rows[("lab:both", "panel")]["failures"] == 0
    assert rows[("lab:both", "panel")]["weight"] == pytest.approx(1.0)


async def test_a_critics_success_does_not_reset_a_panelists_failure_streak(
    server: TestServer, tmp_path: Path
) -> None:
    # "flaky" fails every panel call but reviews fine as a critic, between its panel calls.
    server.default("flaky", lambda b: roles.critic()(b) if is_structured(b) else Fail(500))
    server.default("m2", "Paris")
    server.default("m3", "Paris")
    server.default("judge", roles.judge("Paris"))
    text = workflow_toml(
        server.base_url,
        ("flaky", "m2", "m3"),
        critics=("flaky",),
        settings="max_retries = 0\ncooldown_failures = 3\ncooldown_s = 600",
    )
    wf = parse_workflow(text, "roles.toml")
    with EvidenceStore(f"sqlite:///{tmp_path / 'roles.db'}") as store:
        for i in range(3):
            await fuse(f"Q{i}", workflow=wf, store=store)
        assert store.get("lab:flaky", "*").consecutive_failures == 3
        assert store.get("lab:flaky", "*", role="critic").consecutive_failures == 0
        assert store.get("lab:flaky", "*", role="critic").answers > 2
        fourth = await fuse("Q4", workflow=wf, store=store)
    seat = next(c for c in fourth.candidates if c.model == "lab:flaky")
    assert seat.error is not None and seat.error.startswith("skipped: cool-down")
    critic_calls = [c for c in fourth.calls if c.role == "critic"]
    assert critic_calls and critic_calls[0].ok  # it still reviews while benched as a panelist
