"""An in-memory :class:`~apex.store.aggregate.AggregateStore`: a dict of aggregates."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from apex.store.aggregate import (
    DEFAULT_FOLD,
    AggKey,
    EvidenceEvent,
    FoldParams,
    ModelAggregate,
    aggregate_keys,
    apply_event,
)
from apex.types import Role


class InMemoryAggregates:
    """Aggregates kept in a dict keyed by ``(model, role, category)``; for replays and tests.

    Implements :class:`~apex.store.aggregate.AggregateStore`, folding exactly as the SQL store.
    """

    def __init__(self, params: FoldParams = DEFAULT_FOLD) -> None:
        """An empty store folding events with ``params``."""
        self.params = params
        """How events are folded."""
        self._aggs: dict[AggKey, ModelAggregate] = {}

    def get(self, model: str, category: str, role: Role = "panel") -> ModelAggregate:
        """The aggregate of ``model`` in ``role`` and ``category`` (empty without evidence)."""
        return self._aggs.get((model, role, category)) or ModelAggregate.empty(
            model, role, category
        )

    def get_keys(self, keys: Iterable[AggKey]) -> dict[AggKey, ModelAggregate]:
        """Aggregates by key; an empty one where there is no evidence."""
        return {key: self._aggs.get(key) or ModelAggregate.empty(*key) for key in keys}

    def seed(self, aggregates: Iterable[ModelAggregate]) -> None:
        """Hold these aggregates as they are (the stored state a write-behind buffer starts
        from); empty ones are skipped."""
        for agg in aggregates:
            if agg.events:
                self._aggs[agg.key] = agg

    def apply(self, events: Iterable[EvidenceEvent]) -> None:
        """Fold events, in order, into their category and global aggregates."""
        aggs = self._aggs
        for event in events:
            for key in aggregate_keys(event):
                agg = aggs.get(key)
                if agg is None:
                    agg = ModelAggregate.empty(*key)
                aggs[key] = apply_event(agg, event, self.params)

    def __iter__(self) -> Iterator[ModelAggregate]:
        """Every aggregate held, in insertion order."""
        return iter(list(self._aggs.values()))

    def __len__(self) -> int:
        """Number of aggregates held."""
        return len(self._aggs)
