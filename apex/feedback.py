"""Ground truth after the fact: tell APEX whether a recorded run's answer was right.

The run's evidence record (stored with it) is replayed through
:func:`~apex.evidence.events.cycle_events` with the truth, as a later verdict: with the right
answer, every candidate is compared with it; with only right or wrong, candidates that gave the
final answer share its verdict, and where nothing can be compared (free text the judge rewrote)
no candidate gets one, never a wrong one. The judge's own record gets the verdict on its answer.
"""

from __future__ import annotations

import re

from apex.errors import ConfigError, StoreError
from apex.evidence.events import CycleRecord, PanelVote, Truth, cycle_events
from apex.store import EvidenceStore, StoredRun
from apex.vote import extract
from apex.workflow import ExtractConfig

_LETTER = re.compile(r"^[A-J]$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?(e[-+]?\d+)?$")


def _legacy_record(run: StoredRun) -> CycleRecord:
    """The evidence record of a run stored before records were kept (migration 0004)."""
    values = [c.extracted for c in run.candidates if c.extracted is not None]
    kind = "exact"
    if values and all(_LETTER.match(v) for v in values):
        kind = "choice"
    elif values and all(_NUMBER.match(v) for v in values):
        kind = "number"
    config = ExtractConfig(kind=kind)
    votes = [
        PanelVote(label=c.label, model=c.model, answer=c.extracted)
        for c in run.candidates
        if c.label is not None and c.ok
    ]
    final = extract(run.answer, config) if run.answer else None
    return CycleRecord(
        category=run.category, extract=config, votes=votes, final=final, judge_model=run.judge_model
    )


def record_feedback(
    store: EvidenceStore,
    run_id: str,
    *,
    correct: bool | None = None,
    answer: str | None = None,
) -> int:
    """Record the truth about run ``run_id`` as ground truth; the number of new events.

    ``answer`` is the right answer; ``correct`` says whether the run's final answer was right.
    Giving feedback on the same run again changes nothing (the events are keyed by run).
    """
    if correct is None and answer is None:
        raise ConfigError("feedback needs a verdict: whether the answer was correct, or the answer")
    run = store.run(run_id)
    if run is None:
        raise StoreError(
            f"no run '{run_id}' in {store.masked_url}; `apex runs` lists the recorded runs"
        )
    record = CycleRecord.model_validate(run.evidence) if run.evidence else _legacy_record(run)
    events = cycle_events(record, Truth(expected=answer, final_correct=correct), later=True)
    return store.apply_count(events, run_id=f"{run_id}/feedback")
