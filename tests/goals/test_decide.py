"""Pure goal decisions: limits, completion, blocked, wrap-up, continuation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apex.goals import decide
from apex.goals.types import CycleSummary, GoalSpec, Limits


def cycle(n: int, **kw: object) -> CycleSummary:
    return CycleSummary(cycle=n, run_id=f"r{n}", answer=f"answer {n}", synthesis_path="judge", **kw)  # type: ignore[arg-type]


def spec(**limits: object) -> GoalSpec:
    return GoalSpec(id="g", objective="o", criteria="c", limits=Limits(**limits))  # type: ignore[arg-type]


def test_limits() -> None:
    now = datetime.now(UTC)
    assert decide.limit_reached(spec(), []) is None
    assert "deadline" in (decide.limit_reached(spec(deadline=now - timedelta(1)), []) or "")
    assert "max_cycles" in (decide.limit_reached(spec(max_cycles=2), [cycle(1), cycle(2)]) or "")
    spent = [cycle(1, cost_usd=0.4)]
    assert decide.limit_reached(spec(budget_usd=1.0), spent) is None  # 0.4 + 0.4 <= 1.0
    assert "budget" in (decide.limit_reached(spec(budget_usd=0.7), spent) or "")
    assert "max_tokens" in (
        decide.limit_reached(spec(max_tokens=150), [cycle(1, tokens=100)]) or ""
    )


def test_verifier_has_the_last_word() -> None:
    assert decide.after_cycle(spec(), [cycle(1, judge_met=True, verified=False)])[0] == "active"
    assert decide.after_cycle(spec(), [cycle(1, judge_met=False, verified=True)])[0] == "complete"
    assert decide.after_cycle(spec(), [cycle(1, judge_met=True)])[0] == "complete"


def test_blocked_needs_the_same_blocker_n_times() -> None:
    same = [cycle(i, blocker="No API key.") for i in (1, 2, 3)]
    assert decide.after_cycle(spec(), same)[0] == "blocked"
    varied = [*same[:2], cycle(3, blocker="something else")]
    assert decide.after_cycle(spec(), varied)[0] == "active"
    assert decide.after_cycle(spec(), same[:2])[0] == "active"


def test_wrap_up_and_continuation() -> None:
    cycles = [
        cycle(1, missing=["tests"]),
        cycle(2, judge_met=True, missing=["docs"], feedback="fix x"),
    ]
    summary = decide.wrap_up(cycles, "budget spent")
    assert "budget spent" in summary and "answer 2" in summary and "- docs" in summary
    text = decide.continuation(spec(), cycles)
    assert "answer 2" in text and "fix x" in text and "Completion is unproven" in text
    assert decide.continuation(spec(), []) == ""
