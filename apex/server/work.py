"""Work in flight: each fusion cycle or pass-through call runs as one asyncio task.

The cycle is :func:`apex.fusion.fuse` itself, with the server's store (so the panel is chosen
and weighted by its record, and the run and its evidence are recorded) and a shared client. A
task is counted against ``--max-concurrent`` from its start until it has really ended (a full
house answers 429), and is bounded by ``--deadline-s`` (504).

Cancelling the task (the client disconnected, or the deadline passed) cancels the LangGraph
run and with it every httpx call still in flight; the run is then recorded with status
``cancelled`` (synthesis path ``cancelled`` or ``deadline``) and the calls that had finished,
but no evidence: an interrupted cycle says nothing about its models.

A finished cycle whose run the store cannot record (:class:`~apex.errors.RunNotRecorded`: the
run waits in the spool for ``apex db recover``) is answered all the same, with ``recorded:
false`` and ``not_recorded`` (why, and what to do) in the ``apex`` object.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import HTTPException

from apex.errors import ApexError, RunNotRecorded
from apex.fusion import FusionEvent, fuse
from apex.graph.types import CallRecord, FusionResult
from apex.logging import get_logger
from apex.models.client import ModelClient
from apex.models.types import ChatRequest, ChatResult
from apex.redact import redact
from apex.server.errors import as_problem, overloaded, problem
from apex.server.requests import Conversation, Evidence
from apex.store import EvidenceStore, RunRows
from apex.store.tables import CallRow, RunRow, utcnow
from apex.workflow import Workflow

log = get_logger("apex.server")


@dataclass
class Answer:
    """What a request produced: the answer, usage over every call, and APEX's own fields."""

    text: str
    """The final answer."""
    model: str
    """The ``model`` the response names (``apex/<workflow>`` or the pass-through spec)."""
    usage: dict[str, int]
    """``prompt_tokens``, ``completion_tokens``, ``total_tokens`` summed over every call."""
    apex: dict[str, Any] = field(default_factory=dict)
    """The response's ``apex`` object."""


def usage_of(calls: list[tuple[int | None, int | None]]) -> dict[str, int]:
    """Token usage summed over calls (a count a provider did not report counts as 0)."""
    prompt = sum(p or 0 for p, _ in calls)
    completion = sum(c or 0 for _, c in calls)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


async def kept(
    cycle: Coroutine[Any, Any, FusionResult],
) -> tuple[FusionResult, str | None]:
    """The cycle's result, and why its run was not recorded (None when it was): a store that
    fails once the panel has answered never costs the caller the paid-for answer."""
    try:
        return await cycle, None
    except RunNotRecorded as error:
        log.error("run_not_recorded", error=redact(str(error)))
        return error.result, str(error)


def fused_answer(result: FusionResult, model: str, not_recorded: str | None = None) -> Answer:
    """The answer of a finished cycle (502 when it produced none); ``not_recorded`` says why
    the store did not record it (the answer is given all the same, with ``recorded: false``)."""
    try:
        result.raise_for_failure()
    except ApexError as error:
        raise as_problem(error) from None
    candidates = [
        {
            "label": c.label,
            "member": c.member,
            "model": c.model,
            "ok": c.ok,
            "score": c.score,
            "error": c.error,
            "latency_s": round(c.latency_s, 3),
        }
        for c in result.candidates
    ]
    return Answer(
        text=result.answer,
        model=model,
        usage=usage_of([(c.prompt_tokens, c.completion_tokens) for c in result.calls]),
        apex={
            "run_id": result.run_id,
            "workflow": result.workflow,
            "category": result.category,
            "synthesis_path": result.synthesis_path,
            "analysis": result.analysis.model_dump(mode="json"),
            "candidates": candidates,
            "judge_model": result.judge_model,
            "calls": len(result.calls),
            "cost_usd": result.cost_usd,
            "latency_s": round(result.latency_s, 3),
            "recorded": not_recorded is None,
        }
        | ({"not_recorded": redact(not_recorded)} if not_recorded is not None else {}),
    )


def called_answer(result: ChatResult) -> Answer:
    """The answer of a pass-through call (its failure as the matching HTTP error)."""
    if result.failure is not None:
        raise as_problem(result.failure.to_exception())
    return Answer(
        text=result.text,
        model=result.model,
        usage=usage_of([(result.usage.prompt_tokens, result.usage.completion_tokens)]),
        apex={
            "cost_usd": result.cost_usd,
            "latency_s": round(result.latency_s, 3),
            "attempts": result.attempts,
        },
    )


def cancelled_rows(
    run_id: str, wf: Workflow, category: str, prompt: str, calls: list[CallRecord], **run: Any
) -> RunRows:
    """The rows of a cycle that was cancelled: the run and the calls that had finished."""
    row = RunRow(
        run_id=run_id,
        created_at=utcnow(),
        workflow=wf.name,
        category=category,
        status="cancelled",
        prompt=prompt,
        answer="",
        analysis={},
        cost_usd=None,
        judge_model=None,
        evidence=None,
        **run,
    )
    rows = [CallRow(run_id=run_id, seq=i, **c.model_dump(mode="json")) for i, c in enumerate(calls)]
    return RunRows(run=row, calls=rows)


class Draft:
    """The answer so far while it is written (the judge's, or a pass-through call's)."""

    def __init__(self) -> None:
        self.text = ""
        """What has been written so far."""
        self.changed = asyncio.Event()
        """Set when :attr:`text` changes (the stream clears it once it has sent the text)."""

    def update(self, text: str) -> None:
        """The answer so far is now ``text``."""
        self.text = text
        self.changed.set()


class Work:
    """One request's cycle or call, running as a task; ``await work.task`` for its answer."""

    def __init__(self, run_id: str, task: asyncio.Task[Answer], draft: Draft) -> None:
        self.run_id = run_id
        """The run id (also sent as the ``X-Apex-Run-Id`` header)."""
        self.task = task
        """The task; its result is the :class:`Answer`, its exception an ``HTTPException``."""
        self.draft = draft
        """The answer as it is written, for a stream (empty unless the request streams)."""

    def cancel(self) -> None:
        """Stop it: the calls in flight are cancelled (a cycle is recorded as cancelled)."""
        self.task.cancel()


class Workshop:
    """Starts work, caps how much is in flight, and applies the deadline."""

    def __init__(self, store: EvidenceStore, max_concurrent: int, deadline_s: float) -> None:
        self.store = store
        """Where cycles are recorded."""
        self.max_concurrent = max_concurrent
        """Cap on work in flight."""
        self.deadline_s = deadline_s
        """Per-request deadline."""
        self.in_flight = 0
        """Work started and not yet ended."""

    def _start(self, run_id: str, coro: Coroutine[Any, Any, Answer], draft: Draft) -> Work:
        if self.in_flight >= self.max_concurrent:
            coro.close()
            raise overloaded(
                f"{self.in_flight} cycles are in flight (--max-concurrent "
                f"{self.max_concurrent}); retry shortly"
            )
        self.in_flight += 1
        task = asyncio.get_running_loop().create_task(coro, name=f"apex-work-{run_id}")
        task.add_done_callback(self._ended)
        return Work(run_id, task, draft)

    def _ended(self, task: asyncio.Task[Answer]) -> None:
        self.in_flight -= 1
        error = None if task.cancelled() else task.exception()
        if error is not None and not isinstance(error, HTTPException | ApexError):
            log.error("work_crashed", error=redact(f"{type(error).__name__}: {error}"))

    def fusion(
        self,
        wf: Workflow,
        client: ModelClient,
        talk: Conversation,
        evidence: Evidence,
        *,
        model: str,
        seed: int | None = None,
        stream: bool = False,
    ) -> Work:
        """Start a fusion cycle on ``wf`` over the conversation (``stream``: the judge's
        answer is written into the work's draft as it comes)."""
        run_id, draft = uuid.uuid4().hex, Draft()
        on_answer = draft.update if stream else None
        cycle = self._fuse(run_id, wf, client, talk, evidence, model, seed, on_answer)
        return self._start(run_id, cycle, draft)

    async def _fuse(
        self,
        run_id: str,
        wf: Workflow,
        client: ModelClient,
        talk: Conversation,
        evidence: Evidence,
        model: str,
        seed: int | None,
        on_answer: Callable[[str], None] | None,
    ) -> Answer:
        finished: list[CallRecord] = []

        def observe(event: FusionEvent) -> None:
            if event.kind in ("candidate", "critique"):
                finished.append(event.data.call)
            elif event.kind == "judge":
                finished.extend(event.data.calls)

        category = evidence.category or wf.category
        started = time.time()
        try:
            async with asyncio.timeout(self.deadline_s) as deadline:
                result, not_recorded = await kept(
                    fuse(
                        talk.prompt,
                        workflow=wf,
                        category=category,
                        client=client,
                        context=talk.instructions,
                        guidance=talk.instructions,
                        on_event=observe,
                        on_answer=on_answer,
                        seed=seed,
                        run_id=run_id,
                        store=self.store,
                        expected=evidence.expected,
                        n_options=evidence.n_options,
                    )
                )
        except (TimeoutError, asyncio.CancelledError) as error:
            expired = isinstance(error, TimeoutError) and deadline.expired()
            reason = "deadline" if expired else "cancelled"
            rows = cancelled_rows(
                run_id,
                wf,
                category,
                talk.prompt,
                finished,
                synthesis_path=reason,
                latency_s=time.time() - started,
            )
            try:
                await asyncio.to_thread(self.store.record_run, rows, [])
            except ApexError as store_error:
                log.error("cancelled_run_not_recorded", run=run_id, error=str(store_error))
            if expired:
                raise problem(
                    504,
                    f"run {run_id}: the cycle passed the server's deadline of "
                    f"{self.deadline_s:g}s and was cancelled",
                    "deadline_exceeded",
                ) from None
            raise
        return fused_answer(result, model, not_recorded)

    def passthrough(
        self, client: ModelClient, spec: str, request: ChatRequest, stream: bool = False
    ) -> Work:
        """Start one call to ``spec`` (``stream``: streamed into the work's draft)."""
        run_id, draft = uuid.uuid4().hex, Draft()
        on_text = draft.update if stream else None
        return self._start(run_id, self._call(client, spec, request, on_text), draft)

    async def _call(
        self,
        client: ModelClient,
        spec: str,
        request: ChatRequest,
        on_text: Callable[[str], None] | None,
    ) -> Answer:
        try:
            async with asyncio.timeout(self.deadline_s):
                result = await client.chat(spec, request, on_text)
        except TimeoutError:
            raise problem(
                504,
                f"{spec}: no answer within the server's deadline of {self.deadline_s:g}s",
                "deadline_exceeded",
            ) from None
        return called_answer(result)
