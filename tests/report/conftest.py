"""Stores with real history, built through the public API: a 10-cycle goal over HTTP on
loopback, and a week of fusion runs (the recording clock set back a day at a time)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import apex.recording
from apex.fusion import fuse
from apex.goals.runner import Goal
from apex.goals.types import GoalStatus, Limits
from apex.goals.verify import VerifierSpec
from apex.store import EvidenceStore
from apex.store.tables import utcnow
from apex.testing import Fail, InProcessServer, Malformed, Reply, TestServer, roles, workflow_toml
from apex.workflow import parse_workflow


@dataclass
class GoalStore:
    path: Path
    store: EvidenceStore
    status: GoalStatus


@pytest.fixture
def goal_db(tmp_path: Path) -> Iterator[GoalStore]:
    """A goal that ran 10 cycles: m1 and m2 right (verified), m3 wrong, the judge never met."""
    with TestServer() as server:
        server.default("m1", Reply("the answer is 42", cost=0.001))
        server.default("m2", Reply("the answer is 42", cost=0.002))
        server.default("m3", Reply("the answer is 7", cost=0.0005))
        judge = roles.judge("41", goal_met=False, blocker="needs data")
        server.default("judge", lambda body: Reply(judge(body), cost=0.003))
        workflow = tmp_path / "goal.toml"
        workflow.write_text(workflow_toml(server.base_url, settings='category = "code"'))
        path = tmp_path / "goal.db"
        store = EvidenceStore(f"sqlite:///{path}")
        goal = Goal(
            "Find the answer",
            workflow=str(workflow),
            store=store,
            limits=Limits(max_cycles=10),
            verifier=VerifierSpec(kind="regex", value="42"),
            blocked_after=11,
        )
        status = asyncio.run(goal.run())
    assert len(status.cycles) == 10
    yield GoalStore(path, store, status)
    store.close()


WEEK_DAYS = 7
RUNS_PER_DAY = 3


@pytest.fixture
def week_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, EvidenceStore]]:
    """Three runs a day for a week: m2 answers 500 in the first run of every third day, m3 is
    malformed in the second run of day 2, judge scores rise, categories math and code alternate."""
    # day i at 00:00 + n minutes, the last day today: every run is in the past
    start = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
    clock = {"now": start}
    monkeypatch.setattr(apex.recording, "utcnow", lambda: clock["now"])
    day = {"i": 0, "n": 0}

    def m2(body: dict[str, Any]) -> Any:
        return Fail(500) if day["i"] % 3 == 0 and day["n"] == 0 else Reply("B", cost=0.002)

    def m3(body: dict[str, Any]) -> Any:
        return Malformed() if (day["i"], day["n"]) == (2, 1) else Reply("C", cost=0.001)

    def judge(body: dict[str, Any]) -> Any:
        return Reply(roles.judge("B", score=0.5 + 0.05 * day["i"])(body), cost=0.003)

    path = tmp_path / "week.db"
    store = EvidenceStore(f"sqlite:///{path}")
    with InProcessServer() as server:
        server.default("m1", Reply("B", cost=0.001))
        server.default("m2", m2)
        server.default("m3", m3)
        server.default("judge", judge)
        wf = parse_workflow(workflow_toml(server.base_url), "week.toml")

        async def week() -> None:
            for i in range(WEEK_DAYS):
                day["i"] = i
                for n in range(RUNS_PER_DAY):
                    day["n"] = n
                    clock["now"] = start + timedelta(days=i, minutes=n)
                    category = "math" if (i + n) % 2 == 0 else "code"
                    await fuse("Which option?", workflow=wf, category=category, store=store)

        asyncio.run(week())
    yield path, store
    store.close()


def day_of(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")
