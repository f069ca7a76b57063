"""Retention: drop raw rows older than a cutoff, keep the aggregates, give the space back.

Pruning deletes calls, critiques and evidence rows, blanks candidate texts and the run's prompt,
answer and analysis, and marks the run ``pruned_at``. Runs, candidate labels, models and scores
stay, and so do the aggregates, so weights are unchanged. SQLite is then vacuumed (and its WAL
truncated) so the file shrinks; PostgreSQL tables are vacuumed so the space is reused.

An evidence event pruned away can no longer be recognized as a replay; prune well after any
write could still be retried.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy import exc
from sqlalchemy.engine import Engine

from apex.store.engine import store_error, write_transaction
from apex.store.tables import CALLS, CANDIDATES, CRITIQUES, EVIDENCE, RUNS, utcnow

_VACUUMED = ("runs", "calls", "candidates", "critiques", "evidence")


class PruneReport(BaseModel):
    """What :func:`prune` removed."""

    cutoff: datetime
    """Rows recorded before this instant (naive UTC) were pruned."""
    runs: int
    """Runs whose texts were blanked."""
    calls: int
    """Call rows deleted."""
    candidates: int
    """Candidate texts blanked."""
    critiques: int
    """Critique rows deleted."""
    evidence: int
    """Evidence rows deleted (their aggregates are kept)."""
    bytes_before: int | None = None
    """SQLite file size (with its WAL) before, None on PostgreSQL."""
    bytes_after: int | None = None
    """SQLite file size (with its WAL) after vacuuming, None on PostgreSQL."""


def _sqlite_size(engine: Engine) -> int | None:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return sum(
        os.path.getsize(path) for path in (database, f"{database}-wal") if os.path.exists(path)
    )


def _vacuum(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()
    elif engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql(f"VACUUM {', '.join(_VACUUMED)}")


def _count(result: sa.CursorResult[tuple[()]] | sa.Result[tuple[()]]) -> int:
    rowcount = getattr(result, "rowcount", -1)
    return max(int(rowcount), 0)


def prune(engine: Engine, older_than: timedelta, *, now: datetime | None = None) -> PruneReport:
    """Prune rows recorded more than ``older_than`` before ``now`` (default: the current time)."""
    if older_than < timedelta(0):
        raise ValueError("older_than must not be negative")
    stamp = now or utcnow()
    cutoff = stamp - older_than
    before = _sqlite_size(engine)
    runs, calls, candidates, critiques, evidence = RUNS, CALLS, CANDIDATES, CRITIQUES, EVIDENCE
    old_runs = sa.select(runs.c.run_id).where(runs.c.created_at < cutoff)
    try:
        with write_transaction(engine) as conn:
            n_calls = conn.execute(sa.delete(calls).where(calls.c.run_id.in_(old_runs)))
            n_critiques = conn.execute(sa.delete(critiques).where(critiques.c.run_id.in_(old_runs)))
            n_candidates = conn.execute(
                sa.update(candidates)
                .where(candidates.c.run_id.in_(old_runs), candidates.c.text != "")
                .values(text="")
            )
            n_evidence = conn.execute(sa.delete(evidence).where(evidence.c.created_at < cutoff))
            n_runs = conn.execute(
                sa.update(runs)
                .where(runs.c.created_at < cutoff, runs.c.pruned_at.is_(None))
                .values(prompt="", answer="", analysis={}, pruned_at=stamp)
            )
            report = PruneReport(
                cutoff=cutoff,
                runs=_count(n_runs),
                calls=_count(n_calls),
                candidates=_count(n_candidates),
                critiques=_count(n_critiques),
                evidence=_count(n_evidence),
            )
        _vacuum(engine)
    except exc.SQLAlchemyError as error:
        raise store_error(error, engine.url, "pruning") from error
    return report.model_copy(update={"bytes_before": before, "bytes_after": _sqlite_size(engine)})
