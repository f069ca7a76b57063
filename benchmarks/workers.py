"""Goals completed per minute with 1, 2 and 4 ``apex worker`` processes on PostgreSQL, and the
delay from a schedule's due time to its goal's first panel call.

Each run gets a fresh PostgreSQL schema and starts N workers (``--concurrency 1`` each) against
the loopback test server, whose three panel members answer after 1 s (the judge at once, and
meets every goal in its first cycle). Once every worker is registered, ``--goals-per-worker`` x N
goals are queued and timed until the last completes. Then, with 4 workers, ``--schedules``
schedules ``--every 2s`` run for ``--seconds``; for each firing, the delay is from its due time
to the test server's first panel request for that goal (panel member m1, whose request starts
each cycle), read from the server's request log. Prints a table and p50/p99.

    .venv/bin/python benchmarks/workers.py                    # about two minutes
    .venv/bin/python benchmarks/workers.py --workers 1,4 --goals-per-worker 10
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from apex.goals.queue import defer_sync, queue_app
from apex.goals.runner import Goal
from apex.goals.store import GoalStore
from apex.goals.types import Limits
from apex.store import EvidenceStore
from apex.testing import Reply, TestServer, roles, workflow_toml
from apex.workers import Schedule, ScheduleStore
from apex.workers.registry import live_workers

PG = os.environ.get("APEX_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PANEL = ("m1", "m2", "m3")
PANEL_LATENCY_S = 1.0


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A store URL whose search_path is a new schema, dropped afterwards."""
    schema = f"apex_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@contextmanager
def workers(url: str, n: int, home: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` worker processes on ``url``, stopped with SIGTERM afterwards."""
    env = os.environ | {"APEX_HOME": str(home)}
    command = [sys.executable, "-m", "apex.cli.main", "worker", "--db", url, "--json"]
    procs = [
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        for _ in range(n)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.05)


def throughput(server: TestServer, workflow: str, n: int, goals: int, home: Path) -> float:
    """Goals completed per minute by ``n`` workers."""
    with fresh_schema() as url, workers(url, n, home):
        store = EvidenceStore(url)
        wait_for(lambda: len(live_workers(store)) == n, 60, f"{n} workers registering")
        repo, app = GoalStore(store), queue_app(store)
        specs = [
            Goal(f"goal {i}", workflow=workflow, store=store, limits=Limits(max_cycles=1)).spec
            for i in range(goals)
        ]
        started = time.monotonic()
        with app.open():  # one connection for every job, as a batch would
            for spec in specs:
                repo.create(spec, "queued")
                defer_sync(app, store, spec)
        ids = [s.id for s in specs]
        wait_for(lambda: all(repo.status(i).state == "complete" for i in ids), 600, "completion")
        elapsed = time.monotonic() - started
        store.close()
    return goals / elapsed * 60


def due_delays(
    server: TestServer, workflow: str, schedules: int, seconds: float, home: Path
) -> list[float]:
    """Seconds from each firing's due time to its goal's first panel call, 4 workers."""
    wall = time.time() - time.monotonic()  # the request log's clock to wall time
    with fresh_schema() as url, workers(url, 4, home):
        store = EvidenceStore(url)
        wait_for(lambda: len(live_workers(store)) == 4, 60, "4 workers registering")
        first = len(server.requests)
        for k in range(schedules):
            Schedule(
                f"s{k}",
                objective=f"schedule {k}",
                every=2,
                workflow=workflow,
                limits=Limits(max_cycles=1),
                store=store,
            ).add()
            time.sleep(2 / schedules)  # spread the due times over the period
        time.sleep(seconds)
        infos = {i.spec.name: i for i in ScheduleStore(store).all()}
        for name in infos:
            ScheduleStore(store).set_state(name, "paused")
        time.sleep(3)  # let the last firings make their first call
        delays: list[float] = []
        for name, info in infos.items():
            goals = sorted(GoalStore(store).all(schedule=name), key=lambda g: g.created_at or 0)
            calls = sorted(
                r.started + wall
                for r in server.requests[first:]
                if r.model == "m1" and f"schedule {name[1:]}" in str(r.body)
            )
            anchor = info.spec.rule.anchor.timestamp()
            for goal, call in zip(goals, calls, strict=False):
                assert goal.created_at is not None
                created = goal.created_at.replace(tzinfo=UTC).timestamp()
                due = anchor + ((created - anchor) // 2) * 2  # the due time it fired for
                delays.append(call - due)
        store.close()
    return delays


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts to time")
    parser.add_argument("--goals-per-worker", type=int, default=12)
    parser.add_argument("--schedules", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with TestServer() as server, tempfile.TemporaryDirectory() as tmp:
        for model in PANEL:
            server.default(model, Reply("the answer is 42", latency=PANEL_LATENCY_S))
        server.default("judge", roles.judge("the answer is 42", goal_met=True))
        workflow = Path(tmp) / "bench.toml"
        workflow.write_text(workflow_toml(server.base_url, PANEL, settings="max_retries = 0"))
        home = Path(tmp) / "home"
        rates = {}
        for n in (int(x) for x in args.workers.split(",")):
            rates[n] = throughput(server, str(workflow), n, args.goals_per_worker * n, home)
        base = rates.get(1)
        print("| workers | goals | goals/minute | vs 1 worker |")
        print("|---|---|---|---|")
        for n, rate in rates.items():
            ratio = f"{rate / base:.2f}x" if base else "-"
            print(f"| {n} | {args.goals_per_worker * n} | {rate:.1f} | {ratio} |")
        delays = due_delays(server, str(workflow), args.schedules, args.seconds, home)
        print(
            f"\ndue time -> first panel call, {len(delays)} firings, 4 workers: "
            f"p50 {percentile(delays, 0.5):.3f} s, p99 {percentile(delays, 0.99):.3f} s, "
            f"max {max(delays):.3f} s"
        )


if __name__ == "__main__":
    main()
