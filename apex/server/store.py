"""The server's evidence store: run writes grouped into shared transactions, identical reads shared.

Every cycle reads its panel's record when it starts and records its run when it ends, each from
a worker thread (``fuse`` hands them to ``asyncio.to_thread``). 64 cycles started together read
the same rows 64 times, and end together with 64 transactions that wait for one another (for
SQLite's one write lock, or for the shared aggregate rows on PostgreSQL), each re-reading and
re-writing the same aggregates. Here:

* **group commit**: a run write that arrives while another is in progress waits, and the next
  writer records every run waiting by then in one transaction
  (:meth:`~apex.store.EvidenceStore.record_runs`: the aggregates they share are read and
  written once). Each caller still gets its own answer: whether its run was new, or its own
  error (when a shared write fails, each run is written again on its own, so one bad run does
  not fail the others);
* **shared reads**: a read identical to one in flight waits for that one's answer instead of
  asking the database again (it began a moment earlier, so it is as fresh as the answer's
  caller could tell).

Other processes (workers, ``apex fuse``) write and read as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from apex.store import AggKey, EvidenceEvent, EvidenceStore, ModelAggregate, RunRows
from apex.types import Role

T = TypeVar("T")


@dataclass(eq=False)  # compared by identity: the same run may wait twice
class _Waiting:
    """One run write waiting for the next group commit, and how it went."""

    rows: RunRows
    events: Sequence[EvidenceEvent]
    done: bool = False
    new: bool = False
    error: Exception | None = None


class SharedReads:
    """Identical blocking reads in flight at once, made once (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, Future[Any]] = {}

    def read(self, key: Hashable, read: Callable[[], T]) -> T:
        """``read()``, or the answer of the identical read (same ``key``) now in flight."""
        with self._lock:
            flight = self._flights.get(key)
            leading = flight is None
            if flight is None:
                flight = self._flights[key] = Future()
        if not leading:
            return flight.result()  # type: ignore[no-any-return]
        try:
            value = read()
        except BaseException as error:
            self._land(key, flight, error=error)
            raise
        self._land(key, flight, value=value)
        return value

    def _land(
        self,
        key: Hashable,
        flight: Future[Any],
        value: Any = None,
        error: BaseException | None = None,
    ) -> None:
        with self._lock:
            del self._flights[key]  # from now on, a new read asks the database again
        if error is not None:
            flight.set_exception(error)
        else:
            flight.set_result(value)


class ServerStore(EvidenceStore):
    """An :class:`~apex.store.EvidenceStore` whose run writes in this process are grouped into
    shared transactions and whose identical concurrent reads are made once (same arguments,
    same results, same errors as the plain store)."""

    def __init__(self, url: str | None = None, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._queue: list[_Waiting] = []
        self._queue_lock = threading.Lock()
        self._writing = threading.Lock()  # held by the thread writing a group
        self._reads = SharedReads()

    def record_run(self, rows: RunRows, events: Sequence[EvidenceEvent]) -> bool:
        """Record a run and its evidence (see :meth:`EvidenceStore.record_run`), in the next
        group commit."""
        waiting = _Waiting(rows, events)
        with self._queue_lock:
            self._queue.append(waiting)
        with self._writing:
            if not waiting.done:  # no writer took it: write everything waiting, this included
                with self._queue_lock:
                    group, self._queue = self._queue, []
                if waiting not in group:  # taken by a writer that was interrupted
                    group.append(waiting)
                self._write(group)
        if waiting.error is not None:
            raise waiting.error
        return waiting.new

    def _write(self, group: list[_Waiting]) -> None:
        try:
            outcomes = self.record_runs([(w.rows, w.events) for w in group])
        except Exception as error:
            if len(group) == 1:
                group[0].error, group[0].done = error, True
                return
            for waiting in group:  # one at a time: each run gets its own outcome
                self._write([waiting])
            return
        for waiting, new in zip(group, outcomes, strict=True):
            waiting.new, waiting.done = new, True

    def get_keys(self, keys: Iterable[AggKey]) -> dict[AggKey, ModelAggregate]:
        """Aggregates by key (see :meth:`EvidenceStore.get_keys`), shared with an identical
        read in flight."""
        wanted = tuple(keys)
        found = self._reads.read(
            ("keys", wanted), lambda: super(ServerStore, self).get_keys(wanted)
        )
        return dict(found)

    def updated_at(self, models: Sequence[str], role: Role = "panel") -> dict[str, datetime]:
        """When each model's record changed (see :meth:`EvidenceStore.updated_at`), shared with
        an identical read in flight."""
        wanted = tuple(models)
        key = ("updated", wanted, role)
        found = self._reads.read(key, lambda: super(ServerStore, self).updated_at(wanted, role))
        return dict(found)
