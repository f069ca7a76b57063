"""The server's store groups this process's run writes into shared transactions and makes
identical concurrent reads once, with the same results as the plain store: every run recorded
once, a repeat ignored, a bad run failing alone, every reader answered."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from apex.errors import StoreError
from apex.server.store import ServerStore, SharedReads
from apex.server.work import cancelled_rows
from apex.store import RunRows
from apex.workflow import load_workflow


def rows_of(run_id: str) -> RunRows:
    return cancelled_rows(run_id, load_workflow("local"), "general", "q", [], synthesis_path="x")


def test_concurrent_run_writes_are_all_recorded_once(tmp_path: Path) -> None:
    ids = [f"run{i:02d}" for i in range(24)]
    with ServerStore(f"sqlite:///{tmp_path / 'server.db'}") as store:

        def write(run_id: str) -> bool:
            return store.record_run(rows_of(run_id), [])

        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(write, ids))
            assert not any(pool.map(write, ids[:4]))  # already recorded: nothing written
        assert all(store.run(i) is not None for i in ids)


def test_a_bad_run_in_a_group_fails_alone(tmp_path: Path) -> None:
    ids = [f"run{i:02d}" for i in range(16)]
    with ServerStore(f"sqlite:///{tmp_path / 'server.db'}") as store:
        release = threading.Event()
        store.record_run(rows_of("first"), [])
        real = store.record_runs
        groups: list[int] = []

        def held(runs: list) -> list[bool]:  # type: ignore[type-arg]
            groups.append(len(runs))
            release.wait(5)  # the first write holds the others back: they wait as one group
            return real(runs)

        store.record_runs = held  # type: ignore[method-assign]

        def write(run_id: str) -> bool | str:
            rows = rows_of(run_id)
            if run_id == "run07":
                rows.run.workflow = None  # type: ignore[assignment]  # NOT NULL: the write fails
            try:
                return store.record_run(rows, [])
            except StoreError as error:
                return str(error)

        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(write, i) for i in ids]
            threading.Timer(0.3, release.set).start()
            outcomes = [f.result(10) for f in futures]
        assert max(groups) > 1  # writes waiting together were written together
        bad = outcomes.pop(7)
        assert isinstance(bad, str) and "recording run run07" in bad
        assert outcomes == [True] * 15
        assert [i for i in ids if store.run(i) is None] == ["run07"]


def test_identical_reads_in_flight_are_made_once() -> None:
    reads = SharedReads()
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow() -> dict[str, int]:
        calls.append("slow")
        started.set()
        release.wait(5)
        return {"a": 1}

    with ThreadPoolExecutor(5) as pool:
        first = pool.submit(reads.read, "k", slow)
        started.wait(5)
        others = [pool.submit(reads.read, "k", lambda: {"never": 0}) for _ in range(3)]
        time.sleep(0.2)  # time for them to find the read in flight
        different = pool.submit(reads.read, "other", lambda: {"b": 2})
        assert different.result(5) == {"b": 2}  # another key is not held back
        release.set()
        assert [f.result(5) for f in [first, *others]] == [{"a": 1}] * 4
    assert calls == ["slow"]
    assert reads.read("k", lambda: {"again": 3}) == {"again": 3}  # landed: asked anew


def test_a_failed_read_fails_every_reader_waiting_for_it() -> None:
    reads = SharedReads()
    started, release = threading.Event(), threading.Event()

    def broken() -> int:
        started.set()
        release.wait(5)
        raise StoreError("the database is gone")

    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(reads.read, "k", broken)
        started.wait(5)
        waiting = pool.submit(reads.read, "k", lambda: 1)
        time.sleep(0.2)
        release.set()
        for future in (first, waiting):
            with pytest.raises(StoreError, match="gone"):
                future.result(5)
    assert reads.read("k", lambda: 2) == 2
