"""Where an ``apex worker`` serves the store, a goal started through the API is queued for it, not
run by the server; the server still shows it and follows it to the end over SSE."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from apex.store import EvidenceStore
from apex.testing import Reply, roles
from apex.workers.registry import live_workers
from tests.server.conftest import KEEPALIVE_S, Lab, Serve, wait_until
from tests.server.test_goals_api import FORTY_TWO, Follower
from tests.workers.procs import Workers


def test_a_goal_is_queued_for_a_live_worker_and_run_by_it(
    tmp_path: Path, served_dir: Path, own: Lab
) -> None:
    model = own.workflow()
    own.default("judge", roles.judge("the number is 42"))
    for name in ("m1", "m2", "m3"):
        own.default(name, Reply("42", latency=0.2))
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    EvidenceStore(url).close()  # migrated before either process opens it
    workers = Workers(tmp_path, url)
    [worker] = workers.start()
    server = None
    try:
        with EvidenceStore(url) as store:
            wait_until(lambda: bool(live_workers(store)), "the worker registering", 30)
        server = Serve(tmp_path, served_dir, url, "--keepalive-s", str(KEEPALIVE_S))
        goals = f"{server.url}/goals"
        created = httpx.post(
            goals, json={"objective": "Find the number", "workflow": model, "verifier": FORTY_TWO}
        )
        assert created.status_code == 201, created.text
        goal = created.json()
        assert not goal["running"], "the server hands the goal to the worker"
        assert goal["state"] in ("queued", "active")  # the worker may have taken it already
        follower = Follower(f"{goals}/{goal['id']}/events")
        follower.thread.join(30)
        assert not follower.thread.is_alive(), "the stream closes once the worker completes it"
        assert follower.seen("state", state="complete")
        done = httpx.get(f"{goals}/{goal['id']}").json()
        assert done["state"] == "complete" and done["best_answer"] == "the number is 42"
        assert server.health()["goals_running"] == 0
        ran = [json.loads(line) for line in workers.log(0).read_text().splitlines()]
        finished = [e for e in ran if e["goal"] == goal["id"] and e["event"] == "goal_finished"]
        assert [e["state"] for e in finished] == ["complete"], "the worker ran it"
    finally:
        if server is not None:
            server.stop()
        workers.stop(worker)
        workers.close()
