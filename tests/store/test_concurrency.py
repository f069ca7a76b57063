"""Two OS processes write to one store at once: nothing lost, nothing counted twice."""

from __future__ import annotations

import multiprocessing
import sqlite3
from multiprocessing.synchronize import Barrier

import sqlalchemy as sa

from apex.store import EvidenceStore
from apex.store.aggregate import EvidenceEvent
from apex.store.engine import enable_wal
from apex.store.tables import EVIDENCE, RUNS
from tests.store.factories import PANEL, events_for, fusion_result, record_fusion

BATCHES = 40
SHARED_RUNS = 10
WORKERS = 2


def _batch(worker: int, batch: int) -> list[EvidenceEvent]:
    """Five events on the same five models, in two categories: maximal contention."""
    category = "math" if batch % 2 else "code"
    return [
        EvidenceEvent(model=model, category=category, kind="answer")
        if (worker + i) % 3
        else EvidenceEvent(model=model, category=category, kind="failure", failure_kind="timeout")
        for i, model in enumerate(PANEL)
    ]


def writer(url: str, worker: int, barrier: Barrier) -> None:
    """Open the (possibly not yet migrated) store when the other process does, then write."""
    barrier.wait(timeout=60)
    with EvidenceStore(url) as store:
        for batch in range(BATCHES):
            store.apply(_batch(worker, batch), run_id=f"w{worker}-b{batch}")
            if batch < SHARED_RUNS:  # both processes record the same runs: each counts once
                result = fusion_result(f"shared-{batch}")
                record_fusion(store, result, events_for(result))


def test_two_processes_lose_nothing(db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    procs = [ctx.Process(target=writer, args=(db_url, w, barrier)) for w in range(WORKERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * WORKERS

    expected: dict[tuple[str, str], list[EvidenceEvent]] = {}
    every = [e for w in range(WORKERS) for b in range(BATCHES) for e in _batch(w, b)]
    for b in range(SHARED_RUNS):
        every += events_for(fusion_result(f"shared-{b}"))
    for event in every:
        expected.setdefault((event.model, event.category), []).append(event)
        expected.setdefault((event.model, "*"), []).append(event)

    with EvidenceStore(db_url) as store:
        with store.engine.connect() as conn:
            n_evidence = conn.execute(sa.select(sa.func.count()).select_from(EVIDENCE)).scalar()
            n_runs = conn.execute(sa.select(sa.func.count()).select_from(RUNS)).scalar()
        assert n_evidence == len(every)
        assert n_runs == SHARED_RUNS
        for (model, category), events in expected.items():
            agg = store.get(model, category)
            assert agg.events == len(events), (model, category)
            failures = sum(e.kind == "failure" for e in events)
            assert agg.failures_total == failures, (model, category)
            row = {r.model: r for r in store.leaderboard(category)}[model]
            assert row.calls == sum(e.kind in ("answer", "failure") for e in events)
            assert row.failures_by_kind == ({"timeout": failures} if failures else {})


class _LockedCursor:
    """A cursor whose ``PRAGMA journal_mode = WAL`` fails like SQLite's in a race, twice."""

    def __init__(self) -> None:
        self.failures = 2
        self.statements: list[str] = []

    def execute(self, sql: str) -> _LockedCursor:
        self.statements.append(sql)
        if sql == "PRAGMA journal_mode = WAL" and self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return self

    def fetchone(self) -> tuple[str]:
        return ("delete",)


def test_switching_to_wal_retries_while_locked() -> None:
    """SQLite skips the busy handler while changing the journal mode: several processes opening
    a new file at once got an immediate "database is locked" (3 of 120 opens by 6 processes)."""
    cursor = _LockedCursor()
    enable_wal(cursor)
    assert cursor.failures == 0
    assert cursor.statements.count("PRAGMA journal_mode = WAL") == 3
