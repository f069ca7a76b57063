"""Goal loops on in-process models: terminal states, pause/resume, cancel, evidence flow.

(Goals over real HTTP, in killed and resumed subprocesses, are in test_crash_resume.py.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from apex.goals.loop import GoalEvent
from apex.goals.runner import Goal, resume
from apex.goals.store import GoalStore
from apex.goals.types import Limits
from apex.goals.verify import VerifierSpec
from apex.store import EvidenceStore
from apex.testing import InProcessServer, Reply, roles, workflow_toml

PANEL = ("m1", "m2", "m3")


def workflow_file(tmp_path: Path, base_url: str) -> str:
    path = tmp_path / "goal.toml"
    path.write_text(workflow_toml(base_url, PANEL, settings='max_retries = 0\ncategory = "code"'))
    return str(path)


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    return EvidenceStore(f"sqlite:///{tmp_path / 'apex.db'}")


def cycle_of(body: dict[str, Any]) -> int:
    """Which cycle a request belongs to: the continuation names the best answer's cycle."""
    system = str(body["messages"][0]["content"])
    return (
        1 if "Best answer so far (cycle" not in system else int(system.split("(cycle ")[1][0]) + 1
    )


def goal(tmp_path: Path, inproc: InProcessServer, store: EvidenceStore, **kwargs: Any) -> Goal:
    return Goal(
        "Reach 42", workflow=workflow_file(tmp_path, inproc.base_url), store=store, **kwargs
    )


async def test_complete_by_verifier_and_evidence_flows(
    inproc: InProcessServer, store: EvidenceStore, tmp_path: Path
) -> None:
    # m1 is right from cycle 2 on; m2 is always right; m3 is always wrong
    inproc.default("m1", lambda b: Reply("the answer is 42" if cycle_of(b) > 1 else "maybe 41"))
    inproc.default("m2", Reply("the answer is 42"))
    inproc.default("m3", Reply("the answer is 7"))
    inproc.script("judge", roles.judge("41"))
    inproc.default("judge", roles.judge("42"))
    verifier = VerifierSpec(kind="command", value='grep -q 42 "$APEX_ANSWER_FILE"')
    status = await goal(tmp_path, inproc, store, verifier=verifier).run()
    assert status.state == "complete" and "verifier" in status.reason
    assert [c.verified for c in status.cycles] == [False, True]
    assert status.best_answer == "42"
    # the verifier ran on every candidate: ground truth for each panel model, used in cycle 2
    m3 = store.get("lab:m3", "code")
    assert m3.gt_n > 0 and m3.gt_correct == 0
    second = store.run(status.cycles[1].run_id)
    assert second is not None
    label = {c.model: c.label for c in second.candidates}
    hints = inproc.requests_for("judge")[-1].body["messages"][-1]["content"]
    assert "Reliability hints" in hints and label["lab:m3"] is not None


async def test_complete_by_judge(
    inproc: InProcessServer, store: EvidenceStore, tmp_path: Path
) -> None:
    inproc.default("judge", roles.judge("done", goal_met=True))
    status = await goal(tmp_path, inproc, store).run()
    assert status.state == "complete" and "judge" in status.reason
    assert len(status.cycles) == 1 and status.cycles[0].judge_met is True


async def test_budget_limited_wraps_up(
    inproc: InProcessServer, store: EvidenceStore, tmp_path: Path
) -> None:
    for model in PANEL:
        inproc.default(model, Reply("partial", cost=0.01))
    inproc.default("judge", lambda b: Reply(roles.judge("partial answer")(b), cost=0.02))
    status = await goal(tmp_path, inproc, store, limits=Limits(budget_usd=0.11)).run()
    # each cycle costs 0.05: after two (0.10) a third would cross 0.11, so it never starts
    assert status.state == "budget_limited" and len(status.cycles) == 2
    assert status.cost_usd == pytest.approx(0.10) and status.cost_usd <= 0.11
    assert status.best_answer.startswith("Stopped: budget")
    assert "partial answer" in status.best_answer and "Still missing" in status.best_answer
    assert len(inproc.requests_for("judge")) == 2  # the wrap-up did no new work


async def test_blocked_after_repeated_blocker(
    inproc: InProcessServer, store: EvidenceStore, tmp_path: Path
) -> None:
    inproc.default("judge", roles.judge("stuck", blocker="no access to the dataset"))
    status = await goal(tmp_path, inproc, store, blocked_after=3).run()
    assert status.state == "blocked" and len(status.cycles) == 3
    assert "no access to the dataset" in status.reason


async def test_pause_then_resume(
    inproc: InProcessServer, store: EvidenceStore, tmp_path: Path
) -> None:
    inproc.script("judge", roles.judge("x"), roles.judge("x"))
    inproc.default("judge", roles.judge("x", goal_met=True))
    goals = GoalStore(store)

    def pause_after_first(event: GoalEvent) -> None:
        if event.kind == "cycle_finished" and event.cycle == 1:
            goals.request(event.goal_id, "paused", ["active"])  # as `apex goal pause` would

    g = goal(tmp_path, inproc, store, on_event=pause_after_first)
    paused = await g.run()
    assert paused.state == "paused" and len(paused.cycles) == 1
    done = await resume(g.id, store=store)
    assert done.state == "complete" and [c.cycle for c in done.cycles] == [1, 2, 3]


async def test_cancel(inproc: InProcessServer, store: EvidenceStore, tmp_path: Path) -> None:
    goals = GoalStore(store)

    def cancel_at_two(event: GoalEvent) -> None:
        if event.kind == "cycle_finished" and event.cycle == 2:
            goals.request(event.goal_id, "cancelled", ["active", "paused"])

    g = goal(tmp_path, inproc, store, on_event=cancel_at_two)
    status = await g.run()
    assert status.state == "cancelled" and len(status.cycles) == 2
    with pytest.raises(Exception, match="cancelled"):
        await resume(g.id, store=store)


async def test_deadline(inproc: InProcessServer, store: EvidenceStore, tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    status = await goal(tmp_path, inproc, store, limits=Limits(deadline=past)).run()
    assert status.state == "budget_limited" and "deadline" in status.reason
    assert not status.cycles and not inproc.requests


async def test_python_verifier_and_failed_state(
    inproc: InProcessServer, store: EvidenceStore, tmp_path: Path
) -> None:
    seen: list[str] = []

    def verifier(answer: str) -> bool:
        seen.append(answer)
        return "ok" in answer

    inproc.default("judge", roles.judge("ok then"))
    status = await goal(tmp_path, inproc, store, verifier=verifier).run()
    assert status.state == "complete" and "ok then" in seen
    broken = goal(tmp_path, inproc, store, verifier=lambda a: 1 / 0 > 0)  # type: ignore[arg-type]
    with pytest.raises(ZeroDivisionError):
        await broken.run()
    failed = GoalStore(store).status(broken.id)
    assert failed.state == "failed" and "ZeroDivisionError" in failed.reason
