"""The fusion cycle as a LangGraph ``StateGraph``.

    START ─Send(panel)─> generate ─> gather ─Send(critics)─> critique ─> reviewed ─┐
                                      │                                          │
                                      ├──────────────(no critics)────────────────┤
                                      │                                          v
                                      └─(failed / vote)─> finalize <─ judge <─Send(JudgeInput)

``generate``, ``critique`` and ``judge`` receive only their own task types through ``Send``;
``judge`` in particular gets a :class:`~apex.graph.types.JudgeInput` and never the state. The
compiled graph is importable (:func:`build_fusion_graph`) so it can be embedded as a subgraph;
its dependencies travel in LangGraph's runtime context (:class:`FusionDeps`).
"""

from __future__ import annotations

import operator
import time
import uuid
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer, Send

from apex.graph import nodes, synthesis
from apex.graph.nodes import CritiqueTask, FusionDeps, GenerateTask, JudgeOutcome
from apex.graph.types import Candidate, Critique, FusionResult, JudgeInput


class CycleInput(TypedDict, total=False):
    """What starts a cycle; a parent graph (the goal loop) shares these keys with it."""

    run_id: str
    prompt: str
    category: str
    context: str
    guidance: str
    goal: bool
    skipped: dict[int, str]
    started: float
    n_options: int | None


class FusionState(CycleInput, total=False):
    """The state of one cycle."""

    candidates: Annotated[list[Candidate], operator.add]
    labels: dict[int, str]
    label_weights: dict[str, float]
    has_evidence: bool
    critiques: Annotated[list[Critique], operator.add]
    outcome: JudgeOutcome
    result: FusionResult


async def _fan_out_panel(state: FusionState, runtime: Runtime[FusionDeps]) -> list[Send]:
    skipped = state.get("skipped", {})
    return [
        Send(
            "generate",
            GenerateTask(
                member=i, spec=spec, prompt=state["prompt"], context=state.get("context", "")
            ),
        )
        for i, spec in enumerate(runtime.context.workflow.panel)
        if i not in skipped
    ]


async def _generate(state: GenerateTask, runtime: Runtime[FusionDeps]) -> dict[str, Any]:
    deps = runtime.context
    model = deps.client.model(state.spec.model)
    return {"candidates": [await nodes.generate(state, model, deps.answer_format())]}


async def _gather(state: FusionState, runtime: Runtime[FusionDeps]) -> dict[str, Any]:
    deps = runtime.context
    candidates = state.get("candidates", [])
    labels = synthesis.assign_labels(candidates, deps.rng)
    weights: dict[str, float] = {}
    if deps.weights is not None:
        models = sorted({c.model for c in candidates})
        category = state.get("category", deps.workflow.category)
        weights = await deps.weights(models, category, state.get("n_options"))
    return {
        "labels": labels,
        "label_weights": synthesis.label_weights(candidates, labels, weights),
        "has_evidence": any(abs(w - 1.0) > 1e-9 for w in weights.values()),
    }


def _to_judge(state: FusionState, deps: FusionDeps) -> Send | str:
    workflow = deps.workflow
    if workflow.synthesis == "vote" or workflow.judge is None:
        return "finalize"
    candidates = synthesis.labeled(state.get("candidates", []), state["labels"])
    inp = synthesis.judge_input(
        state["prompt"],
        "select" if workflow.synthesis == "select" else "judge",
        candidates,
        state.get("critiques", []),
        synthesis.hints(state.get("label_weights", {}), state.get("has_evidence", False)),
        state.get("guidance", ""),
        state.get("goal", False),
    )
    return Send("judge", inp)


async def _after_gather(
    state: FusionState, runtime: Runtime[FusionDeps]
) -> list[Send] | Send | str:
    deps = runtime.context
    n_ok = len(state.get("labels", {}))
    if n_ok == 0 or n_ok < deps.workflow.quorum:
        return "finalize"
    if deps.workflow.critics and deps.workflow.synthesis != "vote":
        candidates = synthesis.labeled(state.get("candidates", []), state["labels"])
        return [
            Send(
                "critique",
                CritiqueTask(index=i, spec=c, prompt=state["prompt"], candidates=candidates),
            )
            for i, c in enumerate(deps.workflow.critics)
        ]
    return _to_judge(state, deps)


async def _critique(state: CritiqueTask, runtime: Runtime[FusionDeps]) -> dict[str, Any]:
    model = runtime.context.client.model(state.spec.model)
    return {"critiques": [await nodes.critique(state, model)]}


async def _reviewed(state: FusionState) -> dict[str, Any]:
    """Join point after the critics: runs once when all of them are done.

    Nodes and edges are coroutines: LangGraph runs a plain function in a thread of the loop's
    executor, and a cycle needs no thread."""
    return {}


async def _after_review(state: FusionState, runtime: Runtime[FusionDeps]) -> Send | str:
    return _to_judge(state, runtime.context)


async def _judge(state: JudgeInput, runtime: Runtime[FusionDeps]) -> dict[str, Any]:
    """The judge node: a JudgeInput sent to it, never the graph state; JudgeDeps, never the
    workflow or the client."""
    deps = runtime.context.judge_deps()
    if deps is None:  # pragma: no cover - _to_judge sends nothing without a judge
        return {"outcome": JudgeOutcome()}
    return {"outcome": await nodes.judge(state, deps)}


async def _finalize(state: FusionState, runtime: Runtime[FusionDeps]) -> dict[str, Any]:
    deps = runtime.context
    result = synthesis.build_result(
        run_id=state.get("run_id") or uuid.uuid4().hex,
        prompt=state["prompt"],
        category=state.get("category", deps.workflow.category),
        workflow=deps.workflow,
        candidates=state.get("candidates", []),
        labels=state.get("labels", {}),
        critiques=state.get("critiques", []),
        outcome=state.get("outcome"),
        weights_by_label=state.get("label_weights", {}),
        skipped=state.get("skipped", {}),
        latency_s=time.time() - state.get("started", time.time()),
        n_options=state.get("n_options"),
    )
    return {"result": result}


def build_fusion_graph(
    checkpointer: Checkpointer = None,
) -> CompiledStateGraph[FusionState, FusionDeps, FusionState, FusionState]:
    """The compiled fusion cycle; run it with ``context=FusionDeps(...)``."""
    graph = StateGraph(FusionState, context_schema=FusionDeps)
    graph.add_node("generate", _generate, input_schema=GenerateTask)
    graph.add_node("gather", _gather)
    graph.add_node("critique", _critique, input_schema=CritiqueTask)
    graph.add_node("reviewed", _reviewed)
    graph.add_node("judge", _judge, input_schema=JudgeInput)
    graph.add_node("finalize", _finalize)
    graph.add_conditional_edges(START, _fan_out_panel, ["generate"])
    graph.add_edge("generate", "gather")
    graph.add_conditional_edges("gather", _after_gather, ["critique", "judge", "finalize"])
    graph.add_edge("critique", "reviewed")
    graph.add_conditional_edges("reviewed", _after_review, ["judge", "finalize"])
    graph.add_edge("judge", "finalize")
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer, name="apex-fusion")
