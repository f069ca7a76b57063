"""A goal killed with SIGKILL at four points resumes through the CLI without repeating work.

Each test starts ``apex goal start`` in a child process against the loopback test server (which
runs in the test process and records every request), kills the child at one point of cycle 1,
then runs ``apex goal resume ID`` in a fresh process. The goal needs two cycles (the verifier
wants 42, which the judge writes only in cycle 2), so the resumed process must finish the
interrupted cycle and go on. Afterwards the store must hold exactly one evidence row per model
call, aggregates that count each event once, and the server must have seen no finished call
again.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from apex.faults import KILL_AT_ENV
from apex.goals.store import GoalStore
from apex.models.providers import BLOCK_REMOTE_ENV
from apex.store import EvidenceStore
from apex.store.tables import AGGREGATES, CALLS, EVIDENCE, GOAL_CYCLES, RUNS
from apex.testing import Reply, TestServer, roles, workflow_toml

PANEL = ("m1", "m2", "m3")
JUDGE = "judge"
OBJECTIVE = "Find the number"
PROCESS_TIMEOUT_S = 30.0
POLL_S = 0.02
SLOW_MEMBER_S = 3.0

_CONTEXT_CYCLE = re.compile(r"Best answer so far \(cycle (\d+)\)")
_ATTEMPT = re.compile(r"attempt (\d+)")


def panel_cycle(body: dict[str, Any]) -> int:
    """A panel request's cycle: cycle 1 has no continuation, later ones name the best cycle."""
    found = _CONTEXT_CYCLE.search(str(body["messages"][0]["content"]))
    return int(found.group(1)) + 1 if found else 1


def judge_cycle(body: dict[str, Any]) -> int:
    """A judge request's cycle, read from the candidates it is shown (``attempt N``)."""
    found = _ATTEMPT.search(str(body["messages"][-1]["content"]))
    assert found is not None, "the judge saw no candidate"
    return int(found.group(1))


def member(model: str) -> Callable[[dict[str, Any]], Reply]:
    """A panel member that says which attempt it is on; 42 only from cycle 2."""

    def respond(body: dict[str, Any]) -> Reply:
        cycle = panel_cycle(body)
        return Reply(f"{model} attempt {cycle}: " + ("42" if cycle > 1 else "still looking"))

    return respond


def script(server: TestServer) -> None:
    """Panel and judge: the judge's answer meets the verifier (``42``) only in cycle 2."""
    for model in PANEL:
        server.default(model, member(model))
    server.default(
        JUDGE,
        roles.judge(lambda body: "the number is 42" if judge_cycle(body) > 1 else "not yet"),
    )


def workflow_file(tmp_path: Path, base_url: str) -> Path:
    """The goal's workflow: three panel members and a judge on the test server, no retries."""
    settings = 'max_retries = 0\ntimeout_s = 10\ncategory = "crash"'
    path = tmp_path / "crash.toml"
    path.write_text(workflow_toml(base_url, PANEL, judge=JUDGE, name="crash", settings=settings))
    return path


def child_env(tmp_path: Path, kill_at: str | None) -> dict[str, str]:
    """The child's environment: state in a temp dir, remote models refused, a kill point."""
    env = {k: v for k, v in os.environ.items() if k not in (KILL_AT_ENV, "APEX_DB")}
    env |= {"APEX_HOME": str(tmp_path / "apex-home"), BLOCK_REMOTE_ENV: "1"}
    if kill_at is not None:
        env[KILL_AT_ENV] = kill_at
    return env


def apex(*args: str) -> list[str]:
    """The command line of ``apex ARGS`` in this interpreter."""
    return [sys.executable, "-m", "apex.cli.main", *args]


class Run:
    """One crash-and-resume scenario: a store, a workflow and the first (doomed) process."""

    def __init__(self, tmp_path: Path, server: TestServer, kill_at: str | None) -> None:
        self.tmp_path = tmp_path
        self.db = tmp_path / "goal.db"
        self.url = f"sqlite:///{self.db}"
        self.out = tmp_path / "start.out"
        self.err = tmp_path / "start.err"
        command = apex(
            "goal", "start", OBJECTIVE, "-w", str(workflow_file(tmp_path, server.base_url)),
            "--db", self.url, "--max-cycles", "3", "--match", r"\b42\b",
        )  # fmt: skip
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=err, env=child_env(tmp_path, kill_at)
            )

    def diagnostics(self) -> str:
        """What the first process printed, for failure messages."""
        return f"stdout:\n{self.out.read_text()}\nstderr:\n{self.err.read_text()}"

    def wait_killed(self) -> None:
        """Wait for the first process, which must have died of SIGKILL."""
        try:
            code = self.proc.wait(PROCESS_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the goal process was not killed in time\n{self.diagnostics()}")
        assert code == -signal.SIGKILL, f"exit {code}, not SIGKILL\n{self.diagnostics()}"

    def goal_id(self) -> str:
        """The id the first process printed first, which must be the store's only goal."""
        lines = self.out.read_text().splitlines()
        assert lines, f"no goal id printed\n{self.diagnostics()}"
        with EvidenceStore(self.url) as store:
            goals = GoalStore(store).all()
        assert [g.spec.id for g in goals] == [lines[0].strip()]
        # A SIGKILL leaves no chance to record anything: the row still says active, and with
        # its process gone (the lease's pid is dead) the goal reads as interrupted.
        assert goals[0].state == "interrupted" and "resume" in goals[0].reason
        assert not goals[0].holder
        return goals[0].spec.id

    def resume(self, goal_id: str) -> str:
        """``apex goal resume ID`` in a fresh process without a kill point; its stdout."""
        done = subprocess.run(
            apex("goal", "resume", goal_id, "--db", self.url),
            capture_output=True,
            text=True,
            env=child_env(self.tmp_path, None),
            timeout=PROCESS_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, f"resume failed\n{done.stdout}\n{done.stderr}"
        return done.stdout


def stored(url: str, goal_id: str) -> tuple[list[str], dict[str, int]]:
    """The goal's run ids by cycle, and the store's row counts before the resume."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            runs = conn.execute(
                sa.select(GOAL_CYCLES.c.run_id)
                .where(GOAL_CYCLES.c.goal_id == goal_id)
                .order_by(GOAL_CYCLES.c.cycle)
            ).scalars()
            counts = {
                table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for table in (RUNS, CALLS, EVIDENCE)
            }
            return list(runs), counts
    finally:
        engine.dispose()


def check_evidence(url: str, run_ids: list[str]) -> None:
    """One answer/failure evidence row per call, no duplicate key, aggregates match the rows."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(RUNS)).scalar_one() == len(
                run_ids
            )
            for run_id in run_ids:
                calls = Counter(
                    conn.execute(sa.select(CALLS.c.model).where(CALLS.c.run_id == run_id))
                    .scalars()
                    .all()
                )
                per_call = Counter(
                    conn.execute(
                        sa.select(EVIDENCE.c.model).where(
                            EVIDENCE.c.run_id == run_id, EVIDENCE.c.kind.in_(["answer", "failure"])
                        )
                    )
                    .scalars()
                    .all()
                )
                assert calls and per_call == calls, run_id
                assert calls == Counter({f"lab:{m}": 1 for m in (*PANEL, JUDGE)}), run_id
            keys = Counter(conn.execute(sa.select(EVIDENCE.c.key)).scalars().all())
            assert keys and max(keys.values()) == 1
            evidence = conn.execute(
                sa.select(EVIDENCE.c.model, EVIDENCE.c.category, EVIDENCE.c.kind)
            ).all()
            aggregates = conn.execute(
                sa.select(
                    AGGREGATES.c.model,
                    AGGREGATES.c.category,
                    AGGREGATES.c.events,
                    AGGREGATES.c.counts,
                )
            ).all()
    finally:
        engine.dispose()
    assert aggregates
    for agg in aggregates:
        rows = [e for e in evidence if e.model == agg.model and agg.category in ("*", e.category)]
        assert agg.events == len(rows), (agg.model, agg.category)
        by_kind = {k: n for k, n in (agg.counts or {}).items() if ":" not in k}
        assert by_kind == Counter(e.kind for e in rows), (agg.model, agg.category)


def checkpointed_candidates(db: Path) -> int:
    """Panel results LangGraph's SQLite saver has written for tasks of an unfinished step.

    Reads the saver's ``writes`` table: each finished ``generate`` task writes its ``candidates``.
    """
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=1.0)) as conn:
            query = "SELECT count(*) FROM writes WHERE channel = 'candidates'"
            return int(conn.execute(query).fetchone()[0])
    except sqlite3.OperationalError:  # the saver is writing: ask again
        return -1


def finished(server: TestServer, *models: str) -> bool:
    """Whether each of ``models`` has received exactly one request and answered it."""
    requests = [server.requests_for(m) for m in models]
    return all(len(r) == 1 and r[0].finished for r in requests)


def poll(condition: Callable[[], bool], run: Run, what: str) -> None:
    """Wait until ``condition`` holds while the goal process lives (bounded)."""
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    while not condition():
        assert run.proc.poll() is None, f"the goal process died early\n{run.diagnostics()}"
        assert time.monotonic() < deadline, f"{what} never happened\n{run.diagnostics()}"
        time.sleep(POLL_S)


def requests_by_cycle(server: TestServer) -> dict[str, Counter[int]]:
    """How many requests each model received in each cycle."""
    seen: dict[str, Counter[int]] = {}
    for request in server.requests:
        cycle = judge_cycle(request.body) if request.model == JUDGE else panel_cycle(request.body)
        seen.setdefault(request.model, Counter())[cycle] += 1
    return seen


def resume_and_check(run: Run, goal_id: str, server: TestServer) -> dict[str, Counter[int]]:
    """Resume the goal, check it completed in two cycles with clean evidence; the requests."""
    run.resume(goal_id)
    with EvidenceStore(run.url) as store:
        status = GoalStore(store).status(goal_id)
    assert status.state == "complete" and "verifier" in status.reason, status.reason
    assert [c.cycle for c in status.cycles] == [1, 2]
    assert [c.verified for c in status.cycles] == [False, True]
    check_evidence(run.url, [c.run_id for c in status.cycles])
    return requests_by_cycle(server)


EXACTLY_ONCE = Counter({1: 1, 2: 1})


@pytest.mark.parametrize("kill_at", ["before_panel", "after_judge", "evidence_write"])
def test_resume_after_kill_at_fault_point(kill_at: str, server: TestServer, tmp_path: Path) -> None:
    script(server)
    run = Run(tmp_path, server, kill_at)
    run.wait_killed()
    goal_id = run.goal_id()
    runs, counts = stored(run.url, goal_id)
    assert runs == []  # no cycle was recorded as finished
    seen = requests_by_cycle(server)
    if kill_at == "before_panel":
        assert seen == {} and counts == {"runs": 0, "calls": 0, "evidence": 0}
    else:
        assert seen == {m: Counter({1: 1}) for m in (*PANEL, JUDGE)}
    if kill_at == "after_judge":
        assert counts == {"runs": 0, "calls": 0, "evidence": 0}
    if kill_at == "evidence_write":  # the run and its evidence were committed, the cycle not
        assert counts["runs"] == 1 and counts["calls"] == 4 and counts["evidence"] >= 4

    seen = resume_and_check(run, goal_id, server)
    assert seen == {m: EXACTLY_ONCE for m in (*PANEL, JUDGE)}


def test_resume_after_kill_mid_panel(server: TestServer, tmp_path: Path) -> None:
    script(server)
    server.script("m3", Reply("too slow to matter", latency=SLOW_MEMBER_S))
    run = Run(tmp_path, server, None)
    poll(lambda: finished(server, "m1", "m2"), run, "two finished panel calls")
    # Kill once LangGraph has stored both finished calls (rather than after a fixed pause).
    poll(lambda: checkpointed_candidates(run.db) == 2, run, "checkpointing the finished calls")
    slow = server.requests_for("m3")
    assert len(slow) == 1 and not slow[0].finished, "m3 must still be in flight at the kill"
    os.kill(run.proc.pid, signal.SIGKILL)
    run.wait_killed()
    goal_id = run.goal_id()
    assert not server.requests_for(JUDGE)

    seen = resume_and_check(run, goal_id, server)
    assert seen["m1"] == seen["m2"] == seen[JUDGE] == EXACTLY_ONCE
    assert seen["m3"] == Counter({1: 2, 2: 1})  # only the unfinished call was made again
