"""A schedule ``--every 2s`` served by real workers fires the expected number of times, each
firing once across workers (``--overlap queue``: its goals run one after another), and
``apex status`` shows the workers and the schedule."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from apex.cli.main import app
from apex.goals.store import GoalStore
from apex.store import EvidenceStore
from apex.testing import TestServer
from apex.workers import ScheduleStore
from apex.workers.registry import live_workers
from tests.workers.conftest import Backend
from tests.workers.procs import JUDGE, PANEL, Workers, poll, requests_by_goal, script
from tests.workers.procs import workflow_file as work_file

WINDOW_S = 7.5
"""How long the schedule runs: due times at 2, 4 and 6 s fall in it, the next (8 s) does not."""
LATE_S = 2.5
"""The most a firing may lag its due time here (a tick a second, a loaded test machine)."""


def test_every_two_seconds_fires_three_times_in_seven_and_a_half(
    backend: Backend, server: TestServer, tmp_path: Path
) -> None:
    script(server)
    store = EvidenceStore(backend.url)
    workers = Workers(tmp_path, backend.url)
    n = min(backend.workers, 2)
    runner = CliRunner()
    try:
        workers.start(n)
        poll(lambda: len(live_workers(store)) == n, "the workers registered", workers)
        added = runner.invoke(
            app,
            [
                "schedule",
                "add",
                "tick",
                "--every",
                "2s",
                "--objective",
                "goal 5: tick",
                "-w",
                str(work_file(tmp_path, server.base_url)),
                "--overlap",
                "queue",  # a slow goal must not hide a firing: they queue up instead
                "--db",
                backend.url,
            ],
        )
        assert added.exit_code == 0, added.output
        anchor = ScheduleStore(store).get("tick").spec.rule.anchor
        time.sleep(max(0.0, anchor.timestamp() + WINDOW_S - time.time()))
        fired = GoalStore(store).all(schedule="tick")
        ScheduleStore(store).set_state("tick", "paused")  # before the 8 s due time
        assert len(fired) == 3, workers.diagnostics()
        for k, goal in enumerate(sorted(fired, key=lambda g: g.created_at or anchor), start=1):
            assert goal.created_at is not None
            lag = goal.created_at - (anchor + timedelta(seconds=2 * k)).replace(tzinfo=None)
            assert timedelta(0) <= lag < timedelta(seconds=LATE_S), (k, lag)
        shown = runner.invoke(app, ["status", "--db", backend.url, "--json"])
        assert shown.exit_code == 0, shown.output
        status = json.loads(shown.stdout)
        assert len(status["workers"]) == n
        assert status["backend"] == ("postgresql" if backend.postgres else "sqlite")
        assert [f["schedule"] for f in status["firings"]] == ["tick"]
        assert status["firings"][0]["rule"] == "every 2s"
        assert status["firings"][0]["state"] == "paused"
        ids = [g.spec.id for g in fired]
        goals = GoalStore(store)
        poll(lambda: all(goals.status(i).state == "complete" for i in ids), "completion", workers)
        for proc in workers.procs:
            workers.stop(proc)
    finally:
        workers.close()
    seen = requests_by_goal(server)
    assert seen == {5: Counter({m: 3 for m in (*PANEL, JUDGE)})}
    assert server.max_in_flight("m1") == 1  # one schedule's goals never ran at once
    store.close()
