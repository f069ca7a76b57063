"""What the dashboard lists that no other module reads: the newest runs."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import exc

from apex.report.data import RunLine
from apex.store import EvidenceStore
from apex.store.engine import read_transaction, store_error
from apex.store.tables import RUNS

DEFAULT_RUNS = 100
"""How many runs the runs page lists."""


def recent_runs(store: EvidenceStore, limit: int = DEFAULT_RUNS) -> list[RunLine]:
    """The newest ``limit`` runs, newest first."""
    query = (
        sa.select(
            RUNS.c.run_id,
            RUNS.c.created_at,
            RUNS.c.workflow,
            RUNS.c.category,
            RUNS.c.status,
            RUNS.c.synthesis_path,
            RUNS.c.cost_usd,
            RUNS.c.latency_s,
        )
        .order_by(RUNS.c.created_at.desc())
        .limit(limit)
    )
    try:
        with read_transaction(store.engine) as conn:
            rows = list(conn.execute(query))
    except exc.SQLAlchemyError as error:
        raise store_error(error, store.url, "listing runs") from error
    return [
        RunLine(
            run_id=r.run_id,
            at=r.created_at,
            workflow=r.workflow,
            category=r.category,
            status=r.status,
            synthesis_path=r.synthesis_path,
            cost_usd=r.cost_usd,
            latency_s=float(r.latency_s),
        )
        for r in rows
    ]
