"""How much disk a long goal takes, and how much pruning its checkpoints gives back.

Runs goals of 25, 50 and 100 cycles (``max_cycles``; the judge never says the goal is met, no
verifier; the loopback test server answers at once; three panel members and a judge) each in a
fresh temporary SQLite store, then prints per goal: the database size, the LangGraph
``checkpoints`` and ``writes`` rows of the goal's thread, bytes per cycle, where the bytes are
(per table, from SQLite's ``dbstat``), and the size after ``prune_checkpoints(store,
timedelta(0))`` (which deletes the checkpoints of finished goals) and ``VACUUM``. The last line
says whether bytes per cycle grow with the number of cycles (superlinear growth).

    .venv/bin/python benchmarks/goal_size.py                 # about a minute
    .venv/bin/python benchmarks/goal_size.py --cycles 100    # one size only
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from apex.goals.runner import Goal
from apex.goals.store import prune_checkpoints
from apex.goals.types import Limits
from apex.store import EvidenceStore
from apex.testing import Reply, TestServer, roles, workflow_toml

PANEL = ("m1", "m2", "m3")
CHECKPOINT_TABLES = ("checkpoints", "writes")
GROWTH_TOLERANCE = 1.15
"""Bytes per cycle may vary this much between goal lengths before growth counts as superlinear."""


@dataclass
class Figures:
    """What one goal left on disk."""

    cycles: int
    seconds: float
    db_bytes: int
    checkpoint_rows: int
    write_rows: int
    by_table: dict[str, int]
    pruned_bytes: int
    pruned_goals: int

    @property
    def per_cycle(self) -> float:
        """Database bytes per cycle."""
        return self.db_bytes / self.cycles

    @property
    def checkpoint_bytes(self) -> int:
        """Bytes in LangGraph's tables and their indexes."""
        names = CHECKPOINT_TABLES + tuple(f"sqlite_autoindex_{t}_" for t in CHECKPOINT_TABLES)
        return sum(n for name, n in self.by_table.items() if name.startswith(names))


def workflow_file(directory: Path, base_url: str) -> Path:
    """Three panel members and a judge on the test server."""
    path = directory / "size.toml"
    path.write_text(workflow_toml(base_url, PANEL, name="size"))
    return path


def settle(db: Path) -> int:
    """Fold the WAL into the database file; the file's size."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db.stat().st_size


def table_bytes(db: Path) -> dict[str, int]:
    """Bytes per table and index (SQLite's ``dbstat``), largest first."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
        ).fetchall()
    return {str(name): int(size) for name, size in rows}


def thread_rows(db: Path, thread_id: str) -> tuple[int, int]:
    """The goal thread's rows in ``checkpoints`` and ``writes``."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        checkpoints = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = ?", (thread_id,)
        ).fetchone()[0]
        writes = conn.execute(
            "SELECT count(*) FROM writes WHERE thread_id = ?", (thread_id,)
        ).fetchone()[0]
    return int(checkpoints), int(writes)


def vacuum(db: Path) -> int:
    """VACUUM the database; its size afterwards."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("VACUUM")
    return settle(db)


async def measure(cycles: int, server: TestServer, directory: Path) -> Figures:
    """Run one goal of ``cycles`` cycles in a fresh store under ``directory``."""
    db = directory / f"goal-{cycles}.db"
    with EvidenceStore(f"sqlite:///{db}") as store:
        goal = Goal(
            "Keep improving the answer",
            workflow=str(workflow_file(directory, server.base_url)),
            limits=Limits(max_cycles=cycles),
            store=store,
        )
        started = time.perf_counter()
        status = await goal.run()
        seconds = time.perf_counter() - started
        assert status.state == "budget_limited" and len(status.cycles) == cycles, status.reason
        db_bytes = settle(db)
        checkpoints, writes = thread_rows(db, goal.id)
        by_table = table_bytes(db)
        pruned = await prune_checkpoints(store, timedelta(0))
        store.close()
        assert thread_rows(db, goal.id) == (0, 0), "the checkpoints were not pruned"
    return Figures(cycles, seconds, db_bytes, checkpoints, writes, by_table, vacuum(db), pruned)


def report(figures: Figures) -> None:
    """Print one goal's figures."""
    f = figures
    print(f"\n{f.cycles} cycles ({f.seconds:.1f} s)")
    print(f"  database file            {f.db_bytes:>12,} bytes")
    print(f"  bytes per cycle          {f.per_cycle:>12,.0f}")
    print(f"  checkpoints rows         {f.checkpoint_rows:>12,}  (thread of the goal)")
    print(f"  writes rows              {f.write_rows:>12,}")
    print(
        f"  in LangGraph's tables    {f.checkpoint_bytes:>12,} bytes "
        f"({f.checkpoint_bytes / f.db_bytes:.0%}, {f.checkpoint_bytes / f.cycles:,.0f} per cycle)"
    )
    top = ", ".join(f"{name} {size:,}" for name, size in list(f.by_table.items())[:6])
    print(f"  largest tables/indexes   {top}")
    print(
        f"  after prune + VACUUM     {f.pruned_bytes:>12,} bytes "
        f"({f.pruned_bytes / f.cycles:,.0f} per cycle; {f.pruned_goals} goal pruned)"
    )


async def main(sizes: list[int]) -> None:
    """Measure each goal length, then compare bytes per cycle across them."""
    with TestServer() as server, tempfile.TemporaryDirectory() as tmp:
        for i, model in enumerate(PANEL):
            server.default(model, Reply(f"Answer {i}: a partial answer to improve"))
        server.default("judge", roles.judge("a partial answer", goal_met=False))
        results = [await measure(n, server, Path(tmp)) for n in sizes]
    for figures in results:
        report(figures)
    if len(results) > 1:
        first, last = results[0], results[-1]
        growth = last.per_cycle / first.per_cycle
        ckpt_growth = (last.checkpoint_bytes / last.cycles) / (
            first.checkpoint_bytes / first.cycles
        )
        verdict = "superlinear" if growth > GROWTH_TOLERANCE else "linear"
        span = last.cycles - first.cycles
        print(
            f"\nmarginal bytes per cycle ({first.cycles} -> {last.cycles} cycles): "
            f"{(last.db_bytes - first.db_bytes) / span:,.0f} before pruning, "
            f"{(last.pruned_bytes - first.pruned_bytes) / span:,.0f} after"
        )
        print(
            f"bytes per cycle, {last.cycles} vs {first.cycles} cycles: x{growth:.2f} "
            f"(checkpoint bytes per cycle x{ckpt_growth:.2f}): {verdict}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cycles", type=int, nargs="+", default=[25, 50, 100])
    asyncio.run(main(parser.parse_args().cycles))
