"""The goal loop as a LangGraph graph, checkpointed so a killed process resumes where it stopped.

    START -> plan ─(limit)─> wrap_up -> END
               │ (paused / cancelled) -> END
               v
            fusion (the fusion cycle as a subgraph) -> verify -> record -> decide ─> plan | END

The fusion subgraph checkpoints each of its steps too, so after a SIGKILL the panel calls that had
finished are not made again. ``record`` writes the cycle's evidence in one transaction keyed by
the cycle's run id, so a replayed write never counts evidence twice.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer

from apex.evidence.events import Truth
from apex.evidence.panel import RecordReader, read_selection
from apex.faults import fault_point
from apex.goals import decide
from apex.goals.types import CycleSummary, GoalSpec, GoalStateName
from apex.goals.verify import Verdict, VerifierFunc, verify
from apex.graph.builder import CycleInput, build_fusion_graph
from apex.graph.nodes import FusionDeps
from apex.graph.types import FusionResult
from apex.recording import evidence_of
from apex.store import EvidenceEvent, RunRows
from apex.telemetry import close_span, open_span
from apex.tracing import (
    FUSION_SPAN,
    GOAL_CYCLE_SPAN,
    fusion_end,
    fusion_error,
    fusion_name,
    fusion_start,
    goal_cycle_start,
)
from apex.vote import options_of


class GoalRepo(Protocol):
    """What the loop needs from the store about goals (cycles live there, not in the state)."""

    def cycles(self, goal_id: str) -> list[CycleSummary]:
        """The goal's recorded cycles, in order."""
        ...

    def goal_state(self, goal_id: str) -> GoalStateName:
        """The goal's state as stored (another process may have paused or cancelled it)."""
        ...

    def set_goal_state(
        self, goal_id: str, state: GoalStateName, reason: str = "", best_answer: str | None = None
    ) -> None:
        """Change the goal's state (and, when given, its best answer)."""
        ...

    def set_best_answer(self, goal_id: str, best_answer: str) -> None:
        """Keep the best answer so far, leaving the state alone."""
        ...

    async def compact(self, goal_id: str) -> None:
        """Drop checkpoints older than the latest (called between cycles)."""
        ...

    def record_cycle(
        self,
        goal_id: str,
        summary: CycleSummary,
        rows: RunRows,
        events: Sequence[EvidenceEvent],
    ) -> None:
        """Write the cycle, its run and its evidence; idempotent on run id and cycle."""
        ...


GoalEventKind = Literal["cycle_started", "candidate", "judge", "cycle_finished", "state"]


@dataclass
class GoalEvent:
    """Progress of a goal loop."""

    kind: GoalEventKind
    goal_id: str
    cycle: int
    data: Any = None


@dataclass
class GoalDeps(FusionDeps):
    """The fusion dependencies plus the goal, its store and an optional Python verifier."""

    spec: GoalSpec | None = None
    repo: GoalRepo | None = None
    evidence: RecordReader | None = None
    verifier_func: VerifierFunc | None = None
    on_event: Any = None
    should_stop: Callable[[], bool] | None = None
    """Asked at each cycle boundary: True stops the goal there, interrupted (a worker's
    shutdown), to be resumed from that checkpoint."""
    cycle: int = 0

    def emit(self, kind: GoalEventKind, cycle: int | None = None, data: Any = None) -> None:
        """Send a progress event to the listener, if any (``cycle`` defaults to the current)."""
        if cycle is not None:
            self.cycle = cycle
        if self.on_event is not None and self.spec is not None:
            self.on_event(GoalEvent(kind, self.spec.id, self.cycle, data))


class GoalLoopState(CycleInput, total=False):
    """The loop's state; the cycle's input keys and ``result`` are shared with the subgraph.

    Cycle history lives in the store, so the state (and each checkpoint) stays the same size
    however many cycles a goal runs.
    """

    goal_id: str
    status: GoalStateName
    reason: str
    verdicts: dict[str, Verdict]
    result: FusionResult


def _deps(runtime: Runtime[FusionDeps]) -> GoalDeps:
    deps = runtime.context
    assert isinstance(deps, GoalDeps) and deps.spec is not None and deps.repo is not None
    return deps


async def _plan(state: GoalLoopState, runtime: Runtime[FusionDeps]) -> dict[str, Any]:
    deps = _deps(runtime)
    spec, repo = deps.spec, deps.repo
    assert spec is not None and repo is not None
    cycles = repo.cycles(spec.id)
    if cycles:  # a cycle boundary: no fusion subgraph is running, the last one's rows can go
        await repo.compact(spec.id)
        fault_point("after_compaction")
    stored = repo.goal_state(spec.id)
    if stored in ("paused", "cancelled"):
        return {"status": stored, "reason": f"{stored} by request"}
    if deps.should_stop is not None and deps.should_stop():
        stop = "stopped at a cycle boundary: its worker is shutting down"
        repo.set_goal_state(spec.id, "interrupted", stop)
        deps.emit("state", len(cycles), "interrupted")
        return {"status": "interrupted", "reason": stop}
    reason = decide.limit_reached(spec, cycles)
    if reason is not None:
        return {"status": "budget_limited", "reason": reason}
    number = len(cycles) + 1
    skipped: dict[int, str] = {}
    if deps.evidence is not None:
        now = datetime.now(UTC).replace(tzinfo=None)
        skipped = read_selection(deps.evidence, deps.workflow, spec.category, now)
    deps.emit("cycle_started", number)
    run_id = f"{spec.id}-c{number}"
    open_span(GOAL_CYCLE_SPAN, GOAL_CYCLE_SPAN, goal_cycle_start(number))  # no-op untraced
    open_span(
        FUSION_SPAN,
        fusion_name(deps.workflow),
        fusion_start(deps.workflow, spec.category),
        bind={"apex.run_id": run_id},
    )
    fault_point("before_panel")
    return {
        "status": "active",
        "run_id": run_id,
        "prompt": spec.objective,
        "category": spec.category,
        "context": decide.continuation(spec, cycles),
        "guidance": f"Objective: {spec.objective}\nSuccess criteria: {spec.criteria or '-'}",
        "goal": True,
        "skipped": skipped,
        "started": datetime.now(UTC).timestamp(),
        "n_options": options_of(spec.objective, deps.workflow.extraction, spec.n_options),
    }


def _after_plan(state: GoalLoopState) -> str:
    status = state.get("status", "active")
    if status == "budget_limited":
        return "wrap_up"
    return "fusion" if status == "active" else END


async def _verify(state: GoalLoopState, runtime: Runtime[FusionDeps]) -> dict[str, Any]:
    deps = _deps(runtime)
    assert deps.spec is not None
    fault_point("after_judge")
    checker = deps.verifier_func or deps.spec.verifier
    result = state["result"]
    close_span(FUSION_SPAN, fusion_end(result), error=fusion_error(result))
    if checker is None or not result.ok:
        return {"verdicts": {}}
    # The final answer decides the goal; each candidate's own verdict is ground truth for its model.
    texts = {"final": result.answer} | {
        c.label: c.text for c in result.candidates if c.ok and c.label
    }
    verdicts = await asyncio.gather(*(verify(checker, t) for t in texts.values()))
    return {"verdicts": dict(zip(texts, verdicts, strict=True))}


def _summary(number: int, result: FusionResult, verdicts: dict[str, Verdict]) -> CycleSummary:
    final = verdicts.get("final")
    goal = result.goal
    feedback = [final.feedback.strip()] if final and final.feedback.strip() else []
    feedback += goal.reasons if goal else []
    tokens = sum((c.prompt_tokens or 0) + (c.completion_tokens or 0) for c in result.calls)
    panel = [c.failure_kind for c in result.calls if c.role == "panel"]
    return CycleSummary(
        cycle=number,
        run_id=result.run_id,
        answer=result.answer,
        synthesis_path=result.synthesis_path,
        judge_met=goal.goal_met if goal else None,
        verified=final.met if final else None,
        feedback="\n".join(feedback),
        missing=goal.missing if goal else [],
        blocker=(goal.blocker if goal else "") or ("" if result.ok else result.synthesis_path),
        cost_usd=result.cost_usd,
        tokens=tokens,
        outage=decide.is_outage(result.ok, panel),
    )


def _record(state: GoalLoopState, runtime: Runtime[FusionDeps]) -> dict[str, Any]:
    deps = _deps(runtime)
    assert deps.spec is not None and deps.repo is not None
    result, verdicts = state["result"], state.get("verdicts", {})
    number = int(result.run_id.rsplit("-c", 1)[1])
    summary = _summary(number, result, verdicts)
    # Each candidate's own verdict is ground truth for its model; the final one for the judge.
    final = verdicts.get("final")
    truth = Truth(
        by_label={label: v.met for label, v in verdicts.items() if label != "final"},
        final_correct=final.met if final is not None else None,
    )
    rows, events = evidence_of(result, deps.workflow.extraction, truth)
    deps.repo.record_cycle(deps.spec.id, summary, rows, events)
    deps.emit("cycle_finished", summary.cycle, summary)
    return {}


def _decide(state: GoalLoopState, runtime: Runtime[FusionDeps]) -> dict[str, Any]:
    deps = _deps(runtime)
    assert deps.spec is not None and deps.repo is not None
    cycles = deps.repo.cycles(deps.spec.id)
    status, reason = decide.after_cycle(deps.spec, cycles)
    best = decide.best_cycle(cycles)
    last = cycles[-1] if cycles else None
    close_span(
        GOAL_CYCLE_SPAN,
        {
            "apex.goal.status": status,
            "apex.goal.verified": last.verified if last else None,
            "apex.goal.judge_met": last.judge_met if last else None,
            "apex.goal.blocker": last.blocker or None if last else None,
            "apex.cost_usd": last.cost_usd if last else None,
        },
    )
    if status != "active":
        deps.repo.set_goal_state(deps.spec.id, status, reason, best.answer if best else None)
        deps.emit("state", cycles[-1].cycle, status)
    elif best is not None:  # the state stays as stored: a pause may have been requested
        deps.repo.set_best_answer(deps.spec.id, best.answer)
    return {"status": status, "reason": reason}


def _after_decide(state: GoalLoopState) -> str:
    return "plan" if state.get("status") == "active" else END


def _wrap_up(state: GoalLoopState, runtime: Runtime[FusionDeps]) -> dict[str, Any]:
    deps = _deps(runtime)
    assert deps.spec is not None and deps.repo is not None
    reason = state.get("reason", "a limit was reached")
    cycles = deps.repo.cycles(deps.spec.id)
    deps.repo.set_goal_state(deps.spec.id, "budget_limited", reason, decide.wrap_up(cycles, reason))
    deps.emit("state", len(cycles), "budget_limited")
    return {"status": "budget_limited"}


def build_goal_graph(
    checkpointer: Checkpointer = None,
) -> CompiledStateGraph[GoalLoopState, FusionDeps, GoalLoopState, GoalLoopState]:
    """The compiled goal loop; run it with ``context=GoalDeps(...)`` and thread id = goal id."""
    graph = StateGraph(GoalLoopState, context_schema=FusionDeps)
    graph.add_node("plan", _plan)
    graph.add_node("fusion", build_fusion_graph())
    graph.add_node("verify", _verify)
    graph.add_node("record", _record)
    graph.add_node("decide", _decide)
    graph.add_node("wrap_up", _wrap_up)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", _after_plan, ["fusion", "wrap_up", END])
    graph.add_edge("fusion", "verify")
    graph.add_edge("verify", "record")
    graph.add_edge("record", "decide")
    graph.add_conditional_edges("decide", _after_decide, ["plan", END])
    graph.add_edge("wrap_up", END)
    return graph.compile(checkpointer=checkpointer, name="apex-goal")


@functools.cache
def _compiled() -> CompiledStateGraph[GoalLoopState, FusionDeps, GoalLoopState, GoalLoopState]:
    return build_goal_graph()


def goal_graph(
    checkpointer: Checkpointer,
) -> CompiledStateGraph[GoalLoopState, FusionDeps, GoalLoopState, GoalLoopState]:
    """The goal loop bound to ``checkpointer``, from one compilation per process (compiling
    costs a worker more CPU per goal than the rest of the loop's own work)."""
    return _compiled().copy({"checkpointer": checkpointer})
