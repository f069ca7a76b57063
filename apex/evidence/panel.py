"""Reading the record at the start of a cycle: vote weights, and which members sit this one out.

Panel selection reads each member's *panel* record (never its record as judge or critic). A
member whose model failed its last ``cooldown_failures`` panel calls in a row (errors, timeouts)
is skipped until ``cooldown_s`` has passed since that record last changed, then tried again (a
new failure starts a new cool-down). In ``selection = "budget"`` mode, a member whose learned
weight has fallen to about zero after enough ground truth (its votes add nothing the others do
not) is left out. Either way at least ``quorum`` members always run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from apex.evidence.policy import DEFAULT_POLICY, WeightPolicy, panel_weights, weights_of
from apex.store.aggregate import (
    GLOBAL_CATEGORY,
    AggKey,
    AggregateReader,
    ModelAggregate,
    record_keys,
)
from apex.workflow import Workflow

DEFAULT_BUDGET_MIN_WEIGHT = 0.05
"""Budget mode: a weight at or below this adds nothing to the vote."""
DEFAULT_BUDGET_MIN_VERDICTS = 20.0
"""Budget mode: ground-truth verdicts needed before a member may be left out."""

Weights = Callable[[list[str], str, int | None], Awaitable[dict[str, float]]]
"""An async weight source: models, category, number of options -> weights (the graph's
``WeightSource``)."""


class RecordReader(AggregateReader, Protocol):
    """What panel selection reads from the store."""

    def updated_at(self, models: Sequence[str]) -> Mapping[str, datetime]:
        """When each model's global panel record last changed."""
        ...


def store_weights(store: AggregateReader, policy: WeightPolicy = DEFAULT_POLICY) -> Weights:
    """A weight source for the fusion graph that reads the store (in a worker thread)."""

    async def weights(models: list[str], category: str, n_options: int | None) -> dict[str, float]:
        return await asyncio.to_thread(panel_weights, store, models, category, n_options, policy)

    return weights


def select_panel(
    workflow: Workflow,
    category: str,
    aggs: Mapping[AggKey, ModelAggregate],
    updated: Mapping[str, datetime],
    now: datetime,
    policy: WeightPolicy = DEFAULT_POLICY,
) -> dict[int, str]:
    """Panel members to skip this cycle, by index, with the reason (pure)."""
    models = [m.model for m in workflow.panel]
    weights = weights_of(aggs, models, category, None, policy)
    skip: dict[int, str] = {}
    for i, model in enumerate(models):
        key: AggKey = (model, "panel", GLOBAL_CATEGORY)
        record = aggs.get(key) or ModelAggregate.empty(*key)
        since = updated.get(model)
        waited = (now - since).total_seconds() if since is not None else float("inf")
        if (
            record.consecutive_failures >= workflow.cooldown_failures
            and waited < workflow.cooldown_s
        ):
            skip[i] = (
                f"cool-down: {record.consecutive_failures} failures in a row "
                f"({record.last_failure_kind}); retried after {workflow.cooldown_s:g}s"
            )
        elif (
            workflow.selection == "budget"
            and record.gt_n >= DEFAULT_BUDGET_MIN_VERDICTS
            and weights[model] <= DEFAULT_BUDGET_MIN_WEIGHT
        ):
            skip[i] = f"budget: weight {weights[model]:.2f} after {record.gt_n:.0f} verdicts"
    keep = len(models) - len(skip)
    if keep < workflow.quorum:  # never starve the cycle: bring back the longest-waiting members
        for i in sorted(skip, key=lambda i: updated.get(models[i]) or now)[
            : workflow.quorum - keep
        ]:
            del skip[i]
    return skip


def read_record(
    store: RecordReader, workflow: Workflow, category: str
) -> tuple[Mapping[AggKey, ModelAggregate], Mapping[str, datetime]]:
    """The panel's records for ``category`` and when each changed (blocking: in a thread)."""
    models = sorted({m.model for m in workflow.panel})
    return store.get_keys(record_keys(models, category)), store.updated_at(models)


def read_selection(
    store: RecordReader, workflow: Workflow, category: str, now: datetime
) -> dict[int, str]:
    """:func:`select_panel` over the store's current record (blocking: run it in a thread)."""
    aggs, updated = read_record(store, workflow, category)
    return select_panel(workflow, category, aggs, updated, now)


def recorded_weights(
    aggs: Mapping[AggKey, ModelAggregate], policy: WeightPolicy = DEFAULT_POLICY
) -> Weights:
    """A weight source over records already read (:func:`read_record`): the cycle reads its
    panel's record once, at its start, for both the selection and the weights."""

    async def weights(models: list[str], category: str, n_options: int | None) -> dict[str, float]:
        return weights_of(aggs, models, category, n_options, policy)

    return weights
