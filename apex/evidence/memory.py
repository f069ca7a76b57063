"""An in-memory :class:`~apex.evidence.aggregate.AggregateStore`: a dict of aggregates."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from apex.evidence.aggregate import (
    DEFAULT_FOLD,
    EvidenceEvent,
    FoldParams,
    ModelAggregate,
    aggregate_keys,
    apply_event,
)


class InMemoryAggregates:
    """Aggregates kept in a dict keyed by ``(model, category)``; for replays and tests.

    Implements :class:`~apex.evidence.aggregate.AggregateStore`.
    """

    def __init__(self, params: FoldParams = DEFAULT_FOLD) -> None:
        """An empty store folding events with ``params``."""
        self.params = params
        """How events are folded."""
        self._aggs: dict[tuple[str, str], ModelAggregate] = {}

    def get(self, model: str, category: str) -> ModelAggregate:
        """The aggregate of ``(model, category)``; an empty one when there is no evidence."""
        agg = self._aggs.get((model, category))
        return agg if agg is not None else ModelAggregate.empty(model, category)

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
