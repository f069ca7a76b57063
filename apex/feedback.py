"""Ground truth after the fact: tell APEX whether a recorded run's answer was right."""

from __future__ import annotations

from apex.errors import ConfigError, StoreError
from apex.evidence.live import answer_forms, feedback_events
from apex.store import EvidenceStore


def record_feedback(
    store: EvidenceStore,
    run_id: str,
    *,
    correct: bool | None = None,
    answer: str | None = None,
) -> int:
    """Record feedback on run ``run_id`` as ground truth for its panel; the number of new events.

    Giving feedback on the same run again changes nothing (the events are keyed by run).
    """
    if correct is None and answer is None:
        raise ConfigError("say what was right: --correct, --wrong, or --answer X")
    run = store.run(run_id)
    if run is None:
        raise StoreError(f"no run '{run_id}' in {store.masked_url}; list runs with apex evidence")
    candidates = {
        c.label: (c.model, c.extracted) for c in run.candidates if c.label is not None and c.ok
    }
    final = answer_forms(run.answer) if run.answer else set()
    if answer is not None and correct is None:
        correct = bool(answer_forms(answer) & final)
    events = feedback_events(run.category, candidates, final, correct=correct, answer=answer)
    return store.apply_count(events, run_id=f"{run_id}/feedback")
