"""Goal leases on SQLite and PostgreSQL: one process runs a goal at a time, a dead holder's
lease is taken over, and two ``apex goal resume`` of one goal at once run it once."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from apex.errors import GoalBusy
from apex.goals.lease import Holder, LeaseStore
from apex.goals.runner import Goal, drive
from apex.goals.store import GoalStore
from apex.store import EvidenceStore
from apex.store.engine import write_transaction
from apex.store.tables import GOAL_LEASES, utcnow
from apex.testing import InProcessServer, Reply, TestServer, workflow_toml
from tests.workers.procs import JUDGE, PANEL, apex, child_env, requests_by_goal, script
from tests.workers.procs import workflow_file as work_file


def dead_pid() -> int:
    """The id of a process that has exited (and was reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_live_lease_refuses_others_and_a_dead_or_stale_one_is_taken_over(
    db_url: str, tmp_path: Path, server: TestServer
) -> None:
    store = EvidenceStore(db_url)
    goal = Goal("goal 1", workflow=str(work_file(tmp_path, server.base_url)), store=store)
    goal.create()
    leases = LeaseStore(store, ttl_s=30)
    worker, cli = Holder("apex worker w-1"), Holder("apex goal resume")
    leases.acquire(goal.id, worker)
    with pytest.raises(GoalBusy) as busy:
        leases.acquire(goal.id, cli)
    message = str(busy.value)
    assert message.startswith(f"goal {goal.id} is being run by apex worker w-1 (pid ")
    assert re.search(r"heartbeat \d+\.\ds ago\)", message), message  # the age, whatever the load
    assert f"apex goal pause {goal.id}" in message
    assert leases.acquire(goal.id, worker).holder == worker  # its own lease: renewed
    assert GoalStore(store).status(goal.id).holder.startswith("apex worker w-1")

    gone = Holder("apex worker w-2", pid=dead_pid())  # SIGKILL'd on this host: free at once
    with write_transaction(store.engine) as conn:
        conn.execute(sa.update(GOAL_LEASES).values(holder=gone.label, pid=gone.pid))
    assert GoalStore(store).status(goal.id).state == "interrupted"
    assert leases.acquire(goal.id, cli).holder == cli
    assert not leases.renew(goal.id, gone)  # the old holder learns it lost the goal

    far = Holder("apex worker w-3", host="another-machine", pid=1)  # elsewhere: by heartbeat
    with write_transaction(store.engine) as conn:
        conn.execute(
            sa.update(GOAL_LEASES).values(
                holder=far.label,
                host=far.host,
                pid=far.pid,
                expires_at=utcnow() + timedelta(seconds=30),
            )
        )
    with pytest.raises(GoalBusy, match="on another-machine"):
        leases.acquire(goal.id, cli)
    with write_transaction(store.engine) as conn:
        conn.execute(sa.update(GOAL_LEASES).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert leases.acquire(goal.id, cli).holder == cli
    leases.release(goal.id, cli)
    assert leases.leases() == {}
    store.close()


def test_two_resumes_of_one_goal_at_once_run_it_once(
    db_url: str, tmp_path: Path, server: TestServer
) -> None:
    script(server, latency=1.0)
    store = EvidenceStore(db_url)
    goal = Goal("goal 1", workflow=str(work_file(tmp_path, server.base_url)), store=store)
    goal.create()  # as if its process had died: no lease, so it reads as interrupted
    assert GoalStore(store).status(goal.id).state == "interrupted"
    command = apex("goal", "resume", goal.id, "--db", db_url)
    procs = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(tmp_path),
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outputs
    (refused,) = [err for (_, err), p in zip(outputs, procs, strict=True) if p.returncode == 1]
    assert len(refused.strip().splitlines()) == 1, refused
    assert f"error: goal {goal.id} is being run by apex goal resume (pid " in refused
    assert GoalStore(store).status(goal.id).state == "complete"
    assert requests_by_goal(server) == {1: Counter({m: 1 for m in (*PANEL, JUDGE)})}
    assert LeaseStore(store).leases() == {}
    store.close()


async def test_a_holder_whose_lease_is_taken_over_stops_running_the_goal(
    db_url: str, tmp_path: Path, inproc: InProcessServer
) -> None:
    for model in PANEL:
        inproc.default(model, Reply("slow", latency=3.0))
    store = EvidenceStore(db_url)
    path = tmp_path / "slow.toml"
    path.write_text(workflow_toml(inproc.base_url, PANEL))
    goal = Goal("goal 1", workflow=str(path), store=store)
    goal.create()
    other = Holder("apex worker w-9", host="another-machine", pid=1)

    async def take_over() -> None:
        for _ in range(200):  # wait (at most 10 s) until this process holds it
            if goal.id in LeaseStore(store).leases():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # mid-panel: this process looks dead to the other one
        with write_transaction(store.engine) as conn:
            conn.execute(
                sa.update(GOAL_LEASES).values(
                    holder=other.label,
                    host=other.host,
                    pid=other.pid,
                    expires_at=utcnow() + timedelta(seconds=30),
                )
            )

    thief = asyncio.create_task(take_over())
    with pytest.raises(GoalBusy, match=f"goal {goal.id} was taken over by another process"):
        await drive(goal.spec, store, heartbeat_s=0.1)
    await thief
    lease = LeaseStore(store).leases()[goal.id]
    assert lease.holder == other  # left to its new holder, untouched
    assert GoalStore(store).status(goal.id).state == "active"  # the new holder's to change
    store.close()
