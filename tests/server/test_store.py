"""The server's store takes this process's run writes one at a time on SQLite, with the same
results as the plain store: every run recorded once, a repeat ignored."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from apex.server.store import ServerStore
from apex.server.work import cancelled_rows
from apex.workflow import load_workflow


def test_concurrent_run_writes_are_all_recorded_once(tmp_path: Path) -> None:
    wf = load_workflow("local")
    ids = [f"run{i:02d}" for i in range(24)]
    with ServerStore(f"sqlite:///{tmp_path / 'server.db'}") as store:

        def write(run_id: str) -> bool:
            rows = cancelled_rows(run_id, wf, "general", "q", [], synthesis_path="cancelled")
            return store.record_run(rows, [])

        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(write, ids))
            assert not any(pool.map(write, ids[:4]))  # already recorded: nothing written
        assert all(store.run(i) is not None for i in ids)
