"""Recording a finished cycle: its rows for the store and its evidence record.

The one place that reads a :class:`~apex.graph.types.FusionResult` for the layers below it: the
store gets its own row types (:class:`~apex.store.rows.RunRows`), the evidence its
:class:`~apex.evidence.events.CycleRecord`, and :func:`record` writes both with the cycle's
events in one transaction. ``apex.fuse``, ``apex fuse --batch`` and goal cycles all record here.

:func:`record_or_spool` never loses a finished run: when the store cannot take it (a full disk,
a damaged database), the run goes to the spool (``apex.store.spool``) and
:class:`~apex.errors.RunNotRecorded` carries the result to the caller; after each successful
write, the runs spooled for that store are recorded too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from apex.errors import RunNotRecorded, StoreError
from apex.evidence.events import CallOutcome, CycleRecord, Finding, PanelVote, Truth, cycle_events
from apex.graph.types import FusionResult
from apex.logging import get_logger
from apex.store import EvidenceEvent, EvidenceStore, RunRows, spool
from apex.store.tables import CallRow, CandidateRow, CritiqueRow, RunRow, utcnow
from apex.workflow import ExtractConfig

log = get_logger("apex.recording")


def cycle_record(result: FusionResult, extract: ExtractConfig) -> CycleRecord:
    """What the evidence needs to know of ``result``."""
    label_of = {c.member: c.label for c in result.candidates if c.label is not None}
    findings: dict[str, list[Finding]] = {}
    for critique in result.critiques:
        for review in critique.reviews:
            findings.setdefault(review.label, []).extend(
                Finding(type=p.type, severity=p.severity) for p in review.problems
            )
    votes = [
        PanelVote(
            label=c.label,
            model=c.model,
            answer=result.extracted.get(c.label),
            weight=result.label_weights.get(c.label, 1.0),
            score=c.score,
            findings=findings.get(c.label, []),
        )
        for c in result.candidates
        if c.label is not None
    ]
    calls = [
        CallOutcome(
            role=call.role,
            model=call.model,
            ok=call.ok,
            failure_kind=call.failure_kind,
            label=label_of.get(call.member)
            if call.role == "panel" and call.member is not None
            else None,
            retries=max(call.attempts - 1, 0),
        )
        for call in result.calls
    ]
    return CycleRecord(
        category=result.category,
        n_options=result.n_options,
        extract=extract,
        calls=calls,
        votes=votes,
        final=result.answer_extracted if result.ok else None,
        judge_model=result.judge_model,
    )


def run_rows(result: FusionResult, record: CycleRecord, now: datetime) -> RunRows:
    """The store's rows of ``result``, stamped ``now`` (naive UTC)."""
    run_id = result.run_id
    run = RunRow(
        run_id=run_id,
        created_at=now,
        workflow=result.workflow,
        category=result.category,
        status="ok" if result.ok else "failed",
        synthesis_path=result.synthesis_path,
        prompt=result.prompt,
        answer=result.answer,
        analysis=result.analysis.model_dump(mode="json"),
        cost_usd=result.cost_usd,
        latency_s=result.latency_s,
        judge_model=result.judge_model,
        evidence=record.model_dump(mode="json"),
    )
    calls = [
        CallRow(run_id=run_id, seq=seq, **call.model_dump(mode="json"))
        for seq, call in enumerate(result.calls)
    ]
    candidates = [
        CandidateRow(
            run_id=run_id,
            member=c.member,
            label=c.label,
            model=c.model,
            ok=c.ok,
            error=c.error,
            text=c.text,
            extracted=result.extracted.get(c.label) if c.label is not None else None,
            score=c.score,
            latency_s=c.latency_s,
            tokens=c.tokens,
            cost_usd=c.cost_usd,
        )
        for c in result.candidates
    ]
    by_label = {c.label: c.model for c in result.candidates if c.label is not None}
    critiques = [
        CritiqueRow(
            run_id=run_id,
            critic_model=critique.critic,
            critic_index=critique.index,
            label=review.label,
            candidate_model=by_label.get(review.label),
            type=problem.type,
            severity=problem.severity,
            detail=problem.detail,
        )
        for critique in result.critiques
        for review in critique.reviews
        for problem in review.problems
    ]
    return RunRows(run=run, calls=calls, candidates=candidates, critiques=critiques)


def evidence_of(
    result: FusionResult, extract: ExtractConfig, truth: Truth | None = None
) -> tuple[RunRows, list[EvidenceEvent]]:
    """The rows and the evidence events of a finished cycle."""
    record = cycle_record(result, extract)
    return run_rows(result, record, utcnow()), cycle_events(record, truth)


def record(
    store: EvidenceStore,
    result: FusionResult,
    extract: ExtractConfig,
    truth: Truth | None = None,
) -> Sequence[EvidenceEvent]:
    """Write ``result`` and its evidence in one transaction (idempotent on its run id)."""
    rows, events = evidence_of(result, extract, truth)
    store.record_run(rows, events)
    return events


def record_or_spool(
    store: EvidenceStore,
    result: FusionResult,
    extract: ExtractConfig,
    truth: Truth | None = None,
) -> Sequence[EvidenceEvent]:
    """:func:`record`, or, when the store fails, spool the run and raise RunNotRecorded.

    The error carries ``result`` (the answer is never thrown away) and the spool file; one line
    says what failed and what to do. After a successful write, runs spooled earlier for this
    store are recorded as well (best effort: a failure there leaves them spooled).
    """
    rows, events = evidence_of(result, extract, truth)
    try:
        store.record_run(rows, events)
    except Exception as error:  # whatever the store raised, the finished run must survive
        reason = str(error) if isinstance(error, StoreError) else f"{type(error).__name__}: {error}"
        try:
            path = spool.spool_run(rows, list(events), db=store.masked_url, error=reason)
        except StoreError as spool_error:
            raise RunNotRecorded(
                f"run {result.run_id} was not recorded, nor spooled ({spool_error}): {reason}",
                result=result,
                spooled=None,
            ) from error
        raise RunNotRecorded(
            f"run {result.run_id} was not recorded (it waits in {path}; `apex db recover` "
            f"records it once the store works): {reason}",
            result=result,
            spooled=str(path),
        ) from error
    try:
        spool.recover(store)
    except StoreError as error:
        log.warning("spool_not_recovered", db=store.masked_url, error=str(error))
    return events
