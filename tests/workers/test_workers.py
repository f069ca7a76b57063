"""``apex worker`` processes on SQLite (one) and PostgreSQL (three): queued goals run exactly
once, a SIGKILL'd worker's goal is taken over and resumes from its checkpoint, a SIGTERM'd
worker stops at a cycle boundary and exits 0, a second SQLite worker is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from apex.cli.main import app
from apex.goals.lease import LeaseStore
from apex.goals.runner import Goal
from apex.goals.store import GoalStore
from apex.goals.types import Limits
from apex.store import EvidenceStore
from apex.testing import Reply, TestServer, roles
from tests.workers.conftest import Backend
from tests.workers.procs import (
    JUDGE,
    PANEL,
    TAKEOVER_S,
    Workers,
    apex,
    check_evidence,
    child_env,
    goal_number,
    poll,
    requests_by_goal,
    script,
    workflow_file,
)

GOALS = 30
SLOW = 0
"""The goal whose worker is killed: its m3 call is slow the first time."""
SLOW_S = 8.0


def checkpointed_candidates(url: str, goal_id: str) -> int:
    """Finished panel calls LangGraph has written for the goal's unfinished step."""
    table = "writes" if url.startswith("sqlite") else "checkpoint_writes"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = f"SELECT count(*) FROM {table} WHERE thread_id = :t AND channel = 'candidates'"  # noqa: S608
            return int(conn.execute(sa.text(query), {"t": goal_id}).scalar_one())
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # being written, or no table yet
        return -1
    finally:
        engine.dispose()


def test_queued_goals_complete_once_and_a_killed_workers_goal_is_taken_over(
    backend: Backend, server: TestServer, tmp_path: Path
) -> None:
    script(server)
    slow = {"pending": True}

    def m3(body: dict[str, Any]) -> Reply:
        number = goal_number(body)
        latency = SLOW_S if number == SLOW and slow.pop("pending", False) else 0.05
        return Reply(f"m3 on goal {number}: 42", latency=latency)

    server.default("m3", m3)
    store = EvidenceStore(backend.url)
    path = str(workflow_file(tmp_path, server.base_url))
    ids = [
        Goal(
            f"goal {i}: find the number", workflow=path, store=store, limits=Limits(max_cycles=2)
        ).enqueue()
        for i in range(GOALS)
    ]
    workers = Workers(tmp_path, backend.url)
    try:
        workers.start(backend.workers)
        slow_id = ids[SLOW]

        def slow_goal_mid_panel() -> bool:
            finished = [
                r
                for m in ("m1", "m2")
                for r in server.requests_for(m)
                if goal_number(r.body) == SLOW and r.finished
            ]
            return len(finished) == 2 and checkpointed_candidates(backend.url, slow_id) == 2

        poll(slow_goal_mid_panel, "the slow goal's finished calls checkpointed", workers)
        lease = LeaseStore(store).leases([slow_id])[slow_id]
        victim = next(p for p in workers.procs if p.pid == lease.holder.pid)
        in_flight = [r for r in server.requests_for("m3") if goal_number(r.body) == SLOW]
        assert len(in_flight) == 1 and not in_flight[0].finished

        def shown_status() -> dict[str, Any]:
            status = CliRunner().invoke(app, ["status", "--db", backend.url, "--json"])
            assert status.exit_code == 0, status.output
            shown: dict[str, Any] = json.loads(status.stdout)
            return shown

        # every worker shows once it has started (slow to start on a loaded machine)
        poll(lambda: len(shown_status()["workers"]) == backend.workers, "workers shown", workers)
        shown = shown_status()
        assert slow_id in [r["goal_id"] for r in shown["running"]]
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        assert victim.wait(10) == -signal.SIGKILL
        if not backend.postgres:  # SQLite's one worker died: the next one takes over
            workers.start(1)

        def retried() -> bool:
            return len([r for r in server.requests_for("m3") if goal_number(r.body) == SLOW]) == 2

        poll(retried, "the killed worker's goal taken over", workers, timeout=TAKEOVER_S + 10)
        if backend.postgres:
            assert time.monotonic() - killed_at < TAKEOVER_S
        goals = GoalStore(store)
        poll(
            lambda: all(goals.status(i).state == "complete" for i in ids),
            "every goal complete",
            workers,
        )
        for proc in workers.procs:
            if proc is not victim:
                workers.stop(proc)
    finally:
        workers.close()
    for goal_id in ids:
        status = goals.status(goal_id)
        assert [c.cycle for c in status.cycles] == [1], goal_id
    seen = requests_by_goal(server)
    once = Counter({m: 1 for m in (*PANEL, JUDGE)})
    assert {n: c for n, c in seen.items() if n != SLOW} == {n: once for n in range(1, GOALS)}
    assert seen[SLOW] == once + Counter({"m3": 1})  # only the unfinished call was made again
    assert check_evidence(backend.url) == GOALS
    store.close()


def test_sigterm_stops_at_a_cycle_boundary_and_exits_zero(
    backend: Backend, server: TestServer, tmp_path: Path
) -> None:
    script(server, latency=1.5)
    server.default(JUDGE, roles.judge("not yet 42", goal_met=False))
    store = EvidenceStore(backend.url)
    path = str(workflow_file(tmp_path, server.base_url))
    goal_id = Goal("goal 1: two cycles", workflow=path, store=store).enqueue()
    workers = Workers(tmp_path, backend.url, grace_s=8.0)
    try:
        (first,) = workers.start(1)
        poll(lambda: len(server.requests_for("m1")) == 1, "cycle 1's panel calls", workers)
        took = workers.stop(first)  # mid-panel: the cycle finishes, then the worker stops
        assert took < workers.grace_s, workers.diagnostics()
        assert "worker_stopped" in workers.events(0)
        status = GoalStore(store).status(goal_id)
        assert status.state == "queued" and "shutting down" in status.reason, status
        assert [c.cycle for c in status.cycles] == [1] and not status.holder
        assert check_evidence(backend.url) == 1  # the cycle is whole: run, calls, evidence
        assert LeaseStore(store).leases() == {}
        if backend.postgres:
            engine = sa.create_engine(backend.url)
            with engine.connect() as conn:
                jobs = conn.execute(
                    sa.text(
                        "SELECT status, args FROM procrastinate_jobs "
                        "WHERE task_name = 'apex.run_goal'"
                    )
                ).all()
            engine.dispose()
            assert [(j.status, j.args["goal_id"]) for j in jobs] == [("todo", goal_id)]
        server.default(JUDGE, roles.judge("the answer is 42", goal_met=True))
        workers.start(1)
        poll(lambda: GoalStore(store).status(goal_id).state == "complete", "completion", workers)
    finally:
        workers.close()
    assert requests_by_goal(server) == {1: Counter({m: 2 for m in (*PANEL, JUDGE)})}
    assert check_evidence(backend.url) == 2
    store.close()


def test_a_second_worker_on_sqlite_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    workers = Workers(tmp_path, sqlite_url)
    try:
        workers.start(1)
        poll(lambda: "worker_started" in workers.events(0), "the first worker", workers)
        second = subprocess.run(
            apex("worker", "--db", sqlite_url),
            capture_output=True,
            text=True,
            env=child_env(tmp_path),
            timeout=30,
            check=False,
        )
        assert second.returncode == 1
        line = second.stderr.strip()
        assert len(line.splitlines()) == 1, line
        assert "already serves" in line and "use PostgreSQL" in line
        assert f"pid {workers.procs[0].pid}" in line
        workers.stop(workers.procs[0])
    finally:
        workers.close()


def test_grace_running_out_cancels_mid_cycle_and_the_goal_resumes(
    backend: Backend, server: TestServer, tmp_path: Path
) -> None:
    pg_url = backend.url
    script(server, latency=0.05)
    server.script("m3", Reply("m3 on goal 1: 42", latency=5.0))
    store = EvidenceStore(pg_url)
    path = str(workflow_file(tmp_path, server.base_url))
    goal_id = Goal("goal 1: one slow call", workflow=path, store=store).enqueue()
    workers = Workers(tmp_path, pg_url, grace_s=0.5)
    try:
        (first,) = workers.start(1)
        poll(
            lambda: checkpointed_candidates(pg_url, goal_id) == 2, "two calls checkpointed", workers
        )
        took = workers.stop(first)
        # grace, then cancel, unregister and exit: the slack is for a loaded 2-core machine
        assert took < 0.5 + 6.0, workers.diagnostics()
        status = GoalStore(store).status(goal_id)
        assert status.state == "interrupted" and "grace" in status.reason, status
        assert status.cycles == []
        workers.start(1)
        poll(lambda: GoalStore(store).status(goal_id).state == "complete", "completion", workers)
    finally:
        workers.close()
    seen = requests_by_goal(server)[1]
    assert seen == Counter({"m1": 1, "m2": 1, "m3": 2, JUDGE: 1})
    assert check_evidence(pg_url) == 1
    store.close()
