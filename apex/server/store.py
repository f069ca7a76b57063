"""The server's evidence store: the runs this process records are written one at a time.

Every cycle records its run from a worker thread (``fuse`` hands the write to
``asyncio.to_thread``). On SQLite, concurrent writers wait for the database's one write lock in
SQLite's busy handler, which sleeps in growing steps (1, 2, 5 ... 100 ms): 64 cycles ending
together spend most of their recording time asleep, on the critical path of every answer. Taken
one at a time through a lock in this process, each write starts the moment the previous one
commits. Other processes (workers, ``apex fuse``) still meet the busy handler, as before. On
PostgreSQL, where writers do not wait for one another like this, nothing changes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any

from apex.store import EvidenceEvent, EvidenceStore, RunRows


class ServerStore(EvidenceStore):
    """An :class:`~apex.store.EvidenceStore` whose :meth:`record_run` calls in this process
    are serialized by a lock on SQLite (same arguments, same result, same errors)."""

    def __init__(self, url: str | None = None, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        sqlite = self.engine.dialect.name == "sqlite"
        # re-entrant: recovering the spool records runs too
        self._recording = threading.RLock() if sqlite else contextlib.nullcontext()

    def record_run(self, rows: RunRows, events: Sequence[EvidenceEvent]) -> bool:
        """Record a run and its evidence (see :meth:`EvidenceStore.record_run`), one at a time."""
        with self._recording:
            return super().record_run(rows, events)
