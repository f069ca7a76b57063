"""The public fusion API: ``await apex.fuse(prompt, workflow=...)`` and its sync wrapper."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ValidationError

from apex.errors import ConfigError
from apex.evidence.events import Truth
from apex.evidence.panel import read_record, recorded_weights, select_panel
from apex.graph.builder import FusionState, build_fusion_graph
from apex.graph.nodes import FusionDeps, WeightSource
from apex.graph.types import Candidate, Critique, FusionResult
from apex.models.client import ModelClient
from apex.recording import record_or_spool
from apex.store import EvidenceStore
from apex.telemetry import span as traced_span
from apex.tracing import FUSION_SPAN, fusion_end, fusion_error, fusion_name, fusion_start
from apex.vote import options_of
from apex.workflow import Workflow, load_workflow

_GRAPH = build_fusion_graph()


class FusionEvent(BaseModel):
    """Progress of a running cycle, for live displays."""

    kind: Literal["candidate", "critique", "judge", "result"]
    """What just finished."""
    data: Any
    """The candidate, critique, judge outcome or result."""


EventHandler = Callable[[FusionEvent], None]


def resolve_workflow(
    workflow: Workflow | str | Path | None,
    *,
    panel: Sequence[str] | None = None,
    judge: str | None = None,
    critics: Sequence[str] | None = None,
) -> Workflow:
    """Load a workflow and apply CLI-style overrides of panel, judge and critics."""
    wf = workflow if isinstance(workflow, Workflow) else load_workflow(workflow)
    update: dict[str, Any] = {}
    if panel:
        update["panel"] = [{"model": m} for m in panel]
    if judge:
        update["judge"] = {"model": judge}
    if critics is not None:
        update["critics"] = [{"model": m} for m in critics]
    try:
        return Workflow.model_validate(wf.model_dump() | update) if update else wf
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(
            f"workflow '{wf.name}' with the given panel/judge/critics: {message}"
        ) from None


def check_workflow(workflow: Workflow, client: ModelClient) -> None:
    """Resolve every provider the workflow calls (and its key) before any call is made.

    The workflow itself already refused a judge that sits on the panel (unless allowed).
    """
    specs = [m.model for m in workflow.panel] + [c.model for c in workflow.critics]
    if workflow.judge is not None and workflow.synthesis != "vote":
        specs += [
            workflow.judge.model,
            *([workflow.judge.fallback] if workflow.judge.fallback else []),
        ]
    for spec in specs:
        client.model(spec)


def _event(node: str, update: dict[str, Any]) -> FusionEvent | None:
    match node:
        case "generate":
            return FusionEvent(kind="candidate", data=update["candidates"][0])
        case "critique":
            return FusionEvent(kind="critique", data=update["critiques"][0])
        case "judge":
            return FusionEvent(kind="judge", data=update["outcome"])
        case "finalize":
            return FusionEvent(kind="result", data=update["result"])
    return None


async def fuse(
    prompt: str,
    *,
    workflow: Workflow | str | Path | None = None,
    category: str | None = None,
    client: ModelClient | None = None,
    weights: WeightSource | None = None,
    context: str = "",
    guidance: str = "",
    goal: bool = False,
    on_event: EventHandler | None = None,
    on_answer: Callable[[str], None] | None = None,
    seed: int | None = None,
    run_id: str | None = None,
    store: EvidenceStore | None = None,
    expected: str | None = None,
    n_options: int | None = None,
) -> FusionResult:
    """Run one fusion cycle: panel in parallel, critics, blind judge, synthesis.

    With a ``store``, the panel is chosen and weighted by its record, and the cycle with its
    evidence is recorded afterwards (``expected``, when known, is ground truth). ``n_options``
    is the question's number of options (else the workflow's ``[extract] n_options``, else
    counted from the prompt's option lines for choice answers); it corrects the evidence for
    chance. ``on_answer`` hears the judge's answer so far while it is written (judge synthesis,
    where the provider streams; a later attempt's answer comes only with the result, so check
    that ``result.answer`` starts with what it heard). Failures of individual calls are data in
    the result; a result whose
    ``synthesis_path`` is ``all_panel_failed`` or ``quorum_failed`` has no answer
    (``result.raise_for_failure()`` raises for it). Configuration errors raise. When the store
    cannot record the finished run, it is spooled and :class:`~apex.errors.RunNotRecorded`
    raised with the result in ``.result``: the answer is never lost.
    """
    wf = resolve_workflow(workflow)
    owned = client is None
    client = client or ModelClient(wf.client_settings)
    try:
        check_workflow(wf, client)
        cat = category or wf.category
        skipped: dict[int, str] = {}
        if store is not None:
            aggs, updated = await asyncio.to_thread(read_record, store, wf, cat)
            now = datetime.now(UTC).replace(tzinfo=None)
            skipped = select_panel(wf, cat, aggs, updated, now)
            weights = weights or recorded_weights(aggs)
        deps = FusionDeps(
            client=client,
            workflow=wf,
            weights=weights,
            rng=random.Random(seed) if seed is not None else random.SystemRandom(),
            on_answer=on_answer,
        )
        state: FusionState = {
            "run_id": run_id or uuid.uuid4().hex,
            "prompt": prompt,
            "category": cat,
            "skipped": skipped,
            "context": context,
            "guidance": guidance,
            "goal": goal,
            "started": time.time(),
            "n_options": options_of(prompt, wf.extraction, n_options),
        }
        result: FusionResult | None = None
        run = {"apex.run_id": state["run_id"]}
        with traced_span(FUSION_SPAN, fusion_name(wf), fusion_start(wf, cat), bind=run) as span:
            async for chunk in _GRAPH.astream(
                state,
                context=deps,
                config={"max_concurrency": wf.concurrency},
                stream_mode="updates",
            ):
                for node, update in cast(dict[str, Any], chunk).items():
                    event = _event(node, update or {})
                    if event is not None and on_event is not None:
                        on_event(event)
                    if node == "finalize":
                        result = update["result"]
            assert result is not None, "the fusion graph always ends in finalize"
            span.attributes.update(fusion_end(result))
            span.error = fusion_error(result)
        if store is not None:
            truth = Truth(expected=expected) if expected is not None else None
            await asyncio.to_thread(record_or_spool, store, result, wf.extraction, truth)
        return result
    finally:
        if owned:
            await client.aclose()


def fuse_sync(prompt: str, **kwargs: Any) -> FusionResult:
    """Blocking wrapper of :func:`fuse` for scripts."""
    return asyncio.run(fuse(prompt, **kwargs))


__all__ = [
    "Candidate",
    "Critique",
    "FusionEvent",
    "FusionResult",
    "check_workflow",
    "fuse",
    "fuse_sync",
    "resolve_workflow",
]
