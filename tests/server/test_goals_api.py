"""The goals API: a goal started, followed over SSE, paused, resumed and completed; and a server
killed with SIGKILL mid-goal that, started again, resumes it without repeating a finished call."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from apex.testing import Reply, TestServer, roles
from tests.goals.test_crash_resume import (
    JUDGE,
    PANEL,
    check_evidence,
    checkpointed_candidates,
    requests_by_cycle,
    script,
    workflow_file,
)
from tests.server.conftest import Lab, Serve, wait_until

FORTY_TWO = {"kind": "regex", "value": r"\b42\b"}


class Follower:
    """Reads a goal's event stream in a thread, collecting its events until it closes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[dict[str, Any]] = []
        self.names: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with httpx.stream("GET", self.url, timeout=60) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith("event: "):
                    self.names.append(line.removeprefix("event: "))
                elif line.startswith("data: "):
                    self.events.append(json.loads(line.removeprefix("data: ")))

    def seen(self, kind: str, **data: Any) -> bool:
        """Whether an event of ``kind`` (with these data or cycle values) arrived."""
        for event in list(self.events):
            if event["kind"] != kind:
                continue
            values = event["data"] if isinstance(event["data"], dict) else {}
            if all(event.get(k, values.get(k)) == v for k, v in data.items()):
                return True
        return False


def test_a_goal_started_followed_paused_resumed_and_completed(main_server: Serve, own: Lab) -> None:
    verdicts = iter(["not yet", "still not", *["the number is 42"] * 5])
    model = own.workflow()
    own.default("judge", roles.judge(lambda _body: next(verdicts)))
    for name in ("m1", "m2", "m3"):
        own.default(name, Reply("working on it", latency=0.5))
    goals = f"{main_server.url}/goals"
    created = httpx.post(
        goals,
        json={
            "objective": "Find the number",
            "workflow": model,
            "verifier": FORTY_TWO,
            "limits": {"max_cycles": 5},
        },
    )
    assert created.status_code == 201, created.text
    goal = created.json()
    goal_id = goal["id"]
    assert goal["object"] == "goal" and goal["state"] == "active" and goal["running"]
    assert goal["spec"]["verifier"]["kind"] == "regex" and "workflow_toml" not in goal["spec"]
    follower = Follower(f"{goals}/{goal_id}/events")

    wait_until(lambda: follower.seen("status"), "the stream's first event")  # now subscribed
    paused = httpx.post(f"{goals}/{goal_id}/pause")
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    wait_until(lambda: follower.seen("state", state="paused"), "the paused state over SSE")
    shown = httpx.get(f"{goals}/{goal_id}").json()
    assert shown["state"] == "paused" and not shown["running"] and len(shown["cycles"]) == 1
    assert httpx.post(f"{goals}/{goal_id}/pause").status_code == 409

    resumed = httpx.post(f"{goals}/{goal_id}/resume")
    assert resumed.status_code == 200 and resumed.json()["state"] == "active"
    follower.thread.join(30)
    assert not follower.thread.is_alive(), "the stream closes once the goal is complete"

    done = httpx.get(f"{goals}/{goal_id}").json()
    assert done["state"] == "complete" and "verifier" in done["reason"]
    assert [c["verified"] for c in done["cycles"]] == [False, False, True]
    assert done["best_answer"] == "the number is 42"
    kinds = [e["kind"] for e in follower.events]
    assert kinds[0] == "status" and follower.names[0] == "status"
    assert kinds.count("cycle_finished") == 3 and kinds.count("cycle_started") >= 2
    assert kinds.count("candidate") == 9
    states = [e["data"]["state"] for e in follower.events if e["kind"] == "state"]
    assert states == ["paused", "complete"]
    assert follower.events[0]["data"]["running"] and follower.events[-1]["kind"] == "state"
    assert httpx.post(f"{goals}/{goal_id}/resume").status_code == 409
    listed = httpx.get(goals, params={"state": "complete"}).json()["data"]
    assert goal_id in [g["id"] for g in listed]
    assert httpx.get(f"{goals}/{goal_id}/events").text.count("event: status") == 1  # ends at once


def test_goals_refuse_what_they_cannot_run(main_server: Serve, own: Lab) -> None:
    goals = f"{main_server.url}/goals"
    model = own.workflow()
    command = httpx.post(
        goals,
        json={
            "objective": "x",
            "workflow": model,
            "verifier": {"kind": "command", "value": "true"},
        },
    )
    assert command.status_code == 400 and "--allow-command-verifiers" in command.text
    unknown = httpx.post(goals, json={"objective": "x", "workflow": "apex/none"})
    assert unknown.status_code == 404
    assert httpx.post(goals, json={"workflow": model}).status_code == 400
    assert httpx.post(f"{goals}/g-none/cancel").status_code == 404


def test_a_server_killed_mid_goal_resumes_it_when_started_again(
    server: TestServer, tmp_path: Path
) -> None:
    script(server)
    server.script("m3", Reply("too slow to matter", latency=3.0))
    served = tmp_path / "workflows"
    served.mkdir()
    workflow_file(served, server.base_url)
    db = tmp_path / "goal.db"
    url = f"sqlite:///{db}"
    first = Serve(tmp_path, served, url, name="first")
    created = httpx.post(
        f"{first.url}/goals",
        json={
            "objective": "Find the number",
            "workflow": "apex/crash",
            "verifier": FORTY_TWO,
            "limits": {"max_cycles": 3},
        },
    )
    goal_id = created.json()["id"]
    wait_until(
        lambda: all(
            len(server.requests_for(m)) == 1 and server.requests_for(m)[0].finished
            for m in ("m1", "m2")
        ),
        "two finished panel calls",
    )
    wait_until(lambda: checkpointed_candidates(db) == 2, "the finished calls checkpointed")
    [slow] = server.requests_for("m3")
    assert not slow.finished, "m3 must still be in flight at the kill"
    first.kill()
    assert not server.requests_for(JUDGE)

    second = Serve(tmp_path, served, url, name="second")
    try:
        wait_until(
            lambda: httpx.get(f"{second.url}/goals/{goal_id}").json()["state"] == "complete",
            "the resumed goal completing",
            30,
        )
        status = httpx.get(f"{second.url}/goals/{goal_id}").json()
    finally:
        second.stop()
    assert [c["verified"] for c in status["cycles"]] == [False, True]
    check_evidence(url, [c["run_id"] for c in status["cycles"]])
    seen = requests_by_cycle(server)
    once = Counter({1: 1, 2: 1})
    assert all(seen[m] == once for m in (*PANEL[:2], JUDGE))
    assert seen["m3"] == Counter({1: 2, 2: 1})  # only the unfinished call was made again
