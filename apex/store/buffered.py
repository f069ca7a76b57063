"""A write-behind buffer over the evidence store, for one writer folding many batches fast.

``apex replay --db`` folds one batch of events per question and reads the panel's weights
before the next. Writing each batch in its own transaction costs tens of milliseconds;
:class:`WriteBehind` folds in memory with the same rule the store uses
(:func:`~apex.store.aggregate.apply_event`, starting from the stored aggregates) and writes the
events and the folded aggregates every ``flush_every`` batches, and on :meth:`flush`. Reads see
every batch applied so far. It assumes no other process writes the same aggregates meanwhile
(a replay refuses a database that already holds its panel's evidence).
"""

from __future__ import annotations

from collections.abc import Iterable

from apex.store.aggregate import (
    DEFAULT_FOLD,
    AggKey,
    EvidenceEvent,
    ModelAggregate,
    aggregate_keys,
)
from apex.store.memory import InMemoryAggregates
from apex.store.repository import EvidenceStore

DEFAULT_FLUSH_EVERY = 500
"""Batches folded in memory between two writes."""


class WriteBehind:
    """An :class:`~apex.store.aggregate.AggregateStore` over ``store``, written in batches."""

    def __init__(self, store: EvidenceStore, flush_every: int = DEFAULT_FLUSH_EVERY) -> None:
        self.store = store
        """The store written to."""
        self.flush_every = flush_every
        """Batches between writes."""
        self._memory = InMemoryAggregates(store.params or DEFAULT_FOLD)
        self._loaded: set[AggKey] = set()
        self._pending: list[EvidenceEvent] = []
        self._touched: set[AggKey] = set()
        self._batches = 0

    def _load(self, keys: Iterable[AggKey]) -> None:
        missing = [key for key in dict.fromkeys(keys) if key not in self._loaded]
        if missing:
            self._memory.seed(self.store.get_keys(missing).values())
            self._loaded.update(missing)

    def get_keys(self, keys: Iterable[AggKey]) -> dict[AggKey, ModelAggregate]:
        """Aggregates as stored plus every batch applied since."""
        wanted = list(keys)
        self._load(wanted)
        return self._memory.get_keys(wanted)

    def apply(self, events: Iterable[EvidenceEvent]) -> None:
        """Fold a batch in memory; write everything pending every ``flush_every`` batches."""
        batch = list(events)
        touched = {key for event in batch for key in aggregate_keys(event)}
        if not touched <= self._loaded:
            self._load(touched)
        self._memory.apply(batch)
        self._pending += batch
        self._touched |= touched
        self._batches += 1
        if self._batches % self.flush_every == 0:
            self.flush()

    def flush(self) -> None:
        """Write the pending events and the aggregates they changed, in one transaction."""
        if not self._pending:
            return
        folded = self._memory.get_keys(self._touched)
        self.store.apply_count(self._pending, folded=folded)
        self._pending, self._touched = [], set()
