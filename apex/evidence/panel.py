"""Reading the record at the start of a cycle: vote weights, and which members sit this one out.

Panel selection uses the record two ways. A member whose model failed its last
``cooldown_failures`` calls in a row (errors, timeouts) is skipped until ``cooldown_s`` has passed
since that record last changed, then tried again (a new failure starts a new cool-down). In
``selection = "budget"`` mode, a member whose learned weight has fallen to about zero after enough
ground truth (its votes add nothing the others do not) is left out. Either way at least
``quorum`` members always run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from apex.evidence.aggregate import GLOBAL_CATEGORY, ModelAggregate
from apex.evidence.policy import DEFAULT_POLICY, WeightPolicy, model_weight
from apex.graph.nodes import WeightSource
from apex.workflow import Workflow

DEFAULT_BUDGET_MIN_WEIGHT = 0.05
"""Budget mode: a weight at or below this adds nothing to the vote."""
DEFAULT_BUDGET_MIN_VERDICTS = 20.0
"""Budget mode: ground-truth verdicts needed before a member may be left out."""


class AggregateReader(Protocol):
    """What panel selection reads from the store."""

    def get_keys(self, keys: Sequence[tuple[str, str]]) -> Mapping[tuple[str, str], ModelAggregate]:
        """Aggregates by (model, category)."""
        ...

    def updated_at(self, models: Sequence[str]) -> Mapping[str, datetime]:
        """When each model's global record last changed."""
        ...


def weights_of(
    aggs: Mapping[tuple[str, str], ModelAggregate],
    models: Sequence[str],
    category: str,
    policy: WeightPolicy = DEFAULT_POLICY,
) -> dict[str, float]:
    """Each model's vote weight from its category and global aggregates."""
    return {
        m: model_weight(
            aggs.get((m, category)) or ModelAggregate.empty(m, category),
            aggs.get((m, GLOBAL_CATEGORY)) or ModelAggregate.empty(m, GLOBAL_CATEGORY),
            None,
            policy,
        )
        for m in models
    }


def store_weights(store: AggregateReader, policy: WeightPolicy = DEFAULT_POLICY) -> WeightSource:
    """A weight source for the fusion graph that reads the store (in a worker thread)."""

    def read(models: list[str], category: str) -> dict[str, float]:
        keys = [(m, c) for m in models for c in (category, GLOBAL_CATEGORY)]
        return weights_of(store.get_keys(keys), models, category, policy)

    async def weights(models: list[str], category: str) -> dict[str, float]:
        return await asyncio.to_thread(read, models, category)

    return weights


def select_panel(
    workflow: Workflow,
    category: str,
    aggs: Mapping[tuple[str, str], ModelAggregate],
    updated: Mapping[str, datetime],
    now: datetime,
    policy: WeightPolicy = DEFAULT_POLICY,
) -> dict[int, str]:
    """Panel members to skip this cycle, by index, with the reason (pure)."""
    models = [m.model for m in workflow.panel]
    weights = weights_of(aggs, models, category, policy)
    skip: dict[int, str] = {}
    for i, model in enumerate(models):
        record = aggs.get((model, GLOBAL_CATEGORY)) or ModelAggregate.empty(model, GLOBAL_CATEGORY)
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


async def read_selection(
    store: AggregateReader, workflow: Workflow, category: str, now: datetime
) -> dict[int, str]:
    """:func:`select_panel` over the store's current record."""
    models = sorted({m.model for m in workflow.panel})

    def read() -> dict[int, str]:
        keys = [(m, c) for m in models for c in (category, GLOBAL_CATEGORY)]
        return select_panel(workflow, category, store.get_keys(keys), store.updated_at(models), now)

    return await asyncio.to_thread(read)
