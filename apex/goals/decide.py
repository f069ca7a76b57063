"""Pure decisions of a goal loop: go on, complete, blocked, or out of budget; and the wrap-up."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from apex.goals.types import CycleSummary, GoalSpec, GoalStateName
from apex.graph.prompts import boundary_for, quote_block

OUTAGE_KINDS = frozenset({"timeout", "rate_limited", "connection", "http_error"})
"""Call failures that can pass: a cycle whose every panel call failed so is an outage."""


def is_outage(ok: bool, panel_failures: Sequence[str | None]) -> bool:
    """Whether a failed cycle failed because its providers were out, not because of answers.

    ``panel_failures`` holds each panel call's failure kind (None for a call that answered).
    """
    return (
        not ok
        and bool(panel_failures)
        and all(kind is not None and kind in OUTAGE_KINDS for kind in panel_failures)
    )


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .")


def spent(cycles: list[CycleSummary]) -> tuple[float, int]:
    """Known cost and tokens of the cycles."""
    return sum(c.cost_usd or 0.0 for c in cycles), sum(c.tokens for c in cycles)


def limit_reached(
    spec: GoalSpec, cycles: list[CycleSummary], now: datetime | None = None
) -> str | None:
    """Why no further cycle may start, or None.

    A cycle is not started when the next one would be expected to cross the budget or token
    limit (judged by the mean cost of the cycles so far), so limits are respected, not overshot.
    """
    limits = spec.limits
    now = now or datetime.now(UTC)
    counted = [c for c in cycles if not c.outage]
    if limits.deadline is not None and now >= limits.deadline:
        return f"deadline {limits.deadline.isoformat()} passed"
    if limits.max_cycles is not None and len(counted) >= limits.max_cycles:
        return f"max_cycles {limits.max_cycles} reached"
    cost, tokens = spent(cycles)
    n = max(len(cycles), 1)
    if limits.budget_usd is not None and cost + (cost / n if cycles else 0.0) > limits.budget_usd:
        return f"budget ${limits.budget_usd:g} would be exceeded (spent ${cost:.4f})"
    if (
        limits.max_tokens is not None
        and tokens + (tokens // n if cycles else 0) > limits.max_tokens
    ):
        return f"max_tokens {limits.max_tokens} would be exceeded (used {tokens})"
    return None


def after_cycle(spec: GoalSpec, cycles: list[CycleSummary]) -> tuple[GoalStateName, str]:
    """The goal's state after its latest cycle: complete, blocked, interrupted or still active.

    A cycle lost to a provider outage leaves the goal ``interrupted`` (resumable) and never
    counts toward ``blocked``.
    """
    last = cycles[-1]
    if last.met:
        who = "the verifier" if last.verified is not None else "the judge"
        return "complete", f"{who} says the goal is met (cycle {last.cycle})"
    if last.outage:
        return "interrupted", (
            f"provider outage: every panel call of cycle {last.cycle} failed ({last.blocker}); "
            "resume the goal once the providers answer"
        )
    recent = [c for c in cycles if not c.outage][-spec.blocked_after :]
    blockers = {_norm(c.blocker) for c in recent}
    if len(recent) == spec.blocked_after and len(blockers) == 1 and "" not in blockers:
        return "blocked", f"the same blocker {spec.blocked_after} cycles in a row: {last.blocker}"
    return "active", ""


def best_cycle(cycles: list[CycleSummary]) -> CycleSummary | None:
    """The best cycle so far: met first, then verified, then the latest with an answer."""
    answered = [c for c in cycles if c.answer]
    if not answered:
        return None
    return max(answered, key=lambda c: (c.met, c.judge_met is True, c.cycle))


def wrap_up(cycles: list[CycleSummary], reason: str) -> str:
    """The budget-limited summary: no new work, the best answer and what is still missing."""
    best = best_cycle(cycles)
    if best is None:
        return f"Stopped: {reason}. No cycle produced an answer."
    missing = "\n".join(f"- {m}" for m in best.missing) or "- (the judge listed nothing)"
    return (
        f"Stopped: {reason}.\n\nBest answer so far (cycle {best.cycle}):\n{best.answer}\n\n"
        f"Still missing:\n{missing}"
    )


def continuation(spec: GoalSpec, cycles: list[CycleSummary]) -> str:
    """What the panel sees besides the objective: the best answer so far and the feedback.

    A goal's carried ``context`` (a schedule's previous firing) comes first, in every cycle.
    Every text that came from a model (answers, feedback, what is missing, the carried context)
    is quoted as data (:func:`~apex.graph.prompts.quote_block`); the success criteria are the
    user's own and stay as written.
    """
    best = best_cycle(cycles) if cycles else None
    last = cycles[-1] if cycles else None
    missing = "\n".join(f"- {m}" for m in last.missing) if last else ""
    boundary = boundary_for(
        spec.context, best.answer if best else "", last.feedback if last else "", missing
    )
    parts = [quote_block("previous_run", spec.context, boundary=boundary)] if spec.context else []
    if last is None:
        return "\n\n".join(parts)
    parts.append(
        "This is a continuing effort toward an objective. Completion is unproven: improve on the "
        "best answer so far and fix what the feedback says is wrong or missing."
    )
    if spec.criteria:
        parts.append(f"Success criteria:\n{spec.criteria}")
    if best is not None:
        quoted = quote_block("best_answer", best.answer, boundary=boundary)
        parts.append(f"Best answer so far (cycle {best.cycle}):\n{quoted}")
    if last.feedback:
        quoted = quote_block("feedback", last.feedback, boundary=boundary)
        parts.append(f"Feedback on the last attempt:\n{quoted}")
    if missing:
        parts.append(f"Still missing:\n{quote_block('missing', missing, boundary=boundary)}")
    return "\n\n".join(parts)
