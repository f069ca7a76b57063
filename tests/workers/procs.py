"""Worker processes and goals for the worker tests: real ``apex worker`` subprocesses against the
loopback test server (running in the test process, which records every request)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from apex.faults import KILL_AT_ENV
from apex.models.providers import BLOCK_REMOTE_ENV
from apex.store.tables import CALLS, EVIDENCE, GOAL_CYCLES, RUNS
from apex.testing import Reply, TestServer, roles, workflow_toml

PANEL = ("m1", "m2", "m3")
JUDGE = "judge"
HEARTBEAT_S = 0.5
"""Worker heartbeat in the tests: a worker or lease counts as dead after four missed (2 s)."""
TAKEOVER_S = 4 * HEARTBEAT_S + 1.0 + 5.0
"""The stated bound on a dead worker's goal being taken over in the tests: four missed
heartbeats (2 s), the next tick (1 s), and a worker's pick-up with slack for a loaded machine."""
TIMEOUT_S = 60.0
_GOAL = re.compile(r"goal (\d+)")


def apex(*args: str) -> list[str]:
    """The command line of ``apex ARGS`` in this interpreter."""
    return [sys.executable, "-m", "apex.cli.main", *args]


def child_env(tmp_path: Path) -> dict[str, str]:
    """A child's environment: state in a temp dir, remote models refused, no kill point."""
    env = {k: v for k, v in os.environ.items() if k not in (KILL_AT_ENV, "APEX_DB")}
    home = {"APEX_HOME": str(tmp_path / "apex-home"), BLOCK_REMOTE_ENV: "1"}
    return env | home | {"PYTHONFAULTHANDLER": "1"}  # a hung child can show its stacks


def goal_number(body: dict[str, Any]) -> int:
    """Which numbered goal a request is for: the panel sees the objective, the judge the
    candidates (which repeat it)."""
    found = _GOAL.search(str(body["messages"]))
    assert found is not None, body
    return int(found.group(1))


def script(server: TestServer, latency: float = 0.05) -> None:
    """Panel members repeat the goal's number; the judge meets every goal at once."""
    for model in PANEL:

        def answer(body: dict[str, Any], model: str = model) -> Reply:
            return Reply(f"{model} on goal {goal_number(body)}: 42", latency=latency)

        server.default(model, answer)
    server.default(JUDGE, roles.judge("the answer is 42", goal_met=True))


def workflow_file(tmp_path: Path, base_url: str) -> Path:
    """Three panel members and a judge on the test server, no retries."""
    path = tmp_path / "work.toml"
    path.write_text(
        workflow_toml(
            base_url,
            PANEL,
            judge=JUDGE,
            name="work",
            settings='max_retries = 0\ntimeout_s = 10\ncategory = "w"',
        )
    )
    return path


class Workers:
    """``apex worker`` subprocesses on one database, each logging JSON lines to a file."""

    def __init__(self, tmp_path: Path, url: str, grace_s: float = 10.0) -> None:
        self.tmp_path, self.url, self.grace_s = tmp_path, url, grace_s
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, n: int = 1, concurrency: int = 1) -> list[subprocess.Popen[bytes]]:
        """Start ``n`` more workers."""
        started = []
        for _ in range(n):
            i = len(self.procs)
            command = apex(
                "worker",
                "--db",
                self.url,
                "--heartbeat",
                str(HEARTBEAT_S),
                "--grace",
                str(self.grace_s),
                "--concurrency",
                str(concurrency),
            )
            with self.log(i).open("wb") as out, self.log(i, "err").open("wb") as err:
                proc = subprocess.Popen(
                    command, stdout=out, stderr=err, env=child_env(self.tmp_path)
                )
            self.procs.append(proc)
            started.append(proc)
        return started

    def log(self, i: int, kind: str = "out") -> Path:
        """Worker ``i``'s stdout (JSON lines) or stderr file."""
        return self.tmp_path / f"worker{i}.{kind}"

    def diagnostics(self) -> str:
        """Every worker's output, for failure messages."""
        return "\n".join(
            f"--- worker {i} (exit {p.poll()}):\n{self.log(i).read_text()[-3000:]}\n"
            f"{self.log(i, 'err').read_text()[-3000:]}"
            for i, p in enumerate(self.procs)
        )

    def events(self, i: int) -> list[str]:
        """Worker ``i``'s event kinds so far."""
        return [m.group(1) for m in re.finditer(r'"event": "(\w+)"', self.log(i).read_text())]

    def stop(self, proc: subprocess.Popen[bytes], timeout: float | None = None) -> float:
        """SIGTERM one worker and wait for it; how long it took (it must exit 0)."""
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout or self.grace_s + 10)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler: every thread's stack, then exit
            proc.wait(5)
            raise AssertionError(f"no exit after SIGTERM\n{self.diagnostics()}") from None
        assert code == 0, f"exit {code}\n{self.diagnostics()}"
        return time.monotonic() - started

    def close(self) -> None:
        """Stop every worker still running (SIGTERM, then SIGKILL)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(self.grace_s + 5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def poll(
    condition: Callable[[], bool], what: str, workers: Workers, timeout: float = TIMEOUT_S
) -> None:
    """Wait (bounded) until ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} never happened\n{workers.diagnostics()}"
        time.sleep(0.05)


def requests_by_goal(server: TestServer) -> dict[int, Counter[str]]:
    """How many requests each model received for each numbered goal."""
    seen: dict[int, Counter[str]] = {}
    for request in server.requests:
        seen.setdefault(goal_number(request.body), Counter())[request.model] += 1
    return seen


def check_evidence(url: str) -> int:
    """One run per recorded cycle, one answer or failure evidence row per model call, no
    duplicate key; how many runs."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            runs = set(conn.execute(sa.select(RUNS.c.run_id)).scalars())
            cycles = set(conn.execute(sa.select(GOAL_CYCLES.c.run_id)).scalars())
            assert runs == cycles, runs ^ cycles
            calls = Counter(conn.execute(sa.select(CALLS.c.run_id, CALLS.c.model)).all())
            per_call = Counter(
                conn.execute(
                    sa.select(EVIDENCE.c.run_id, EVIDENCE.c.model).where(
                        EVIDENCE.c.kind.in_(["answer", "failure"])
                    )
                ).all()
            )
            assert calls and per_call == calls
            assert all(n == 1 for n in calls.values()), calls
            keys = Counter(conn.execute(sa.select(EVIDENCE.c.key)).scalars())
            assert max(keys.values()) == 1
            return len(runs)
    finally:
        engine.dispose()
