"""Indexes for per-run reads and retention, and the runs.pruned_at marker.

Revision ID: 0002
Revises: 0001
Create Date: 2026-06-02

Per-run reads (``run(run_id)``) and retention (``prune``) scanned whole tables without these
indexes; ``pruned_at`` records that a run's texts and raw rows were dropped. Forward-only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the indexes and the column; existing rows are kept (pruned_at stays NULL)."""
    op.add_column("runs", sa.Column("pruned_at", sa.DateTime(), nullable=True))
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_calls_run_id", "calls", ["run_id"])
    op.create_index("ix_candidates_run_id", "candidates", ["run_id"])
    op.create_index("ix_critiques_run_id", "critiques", ["run_id"])
    op.create_index("ix_evidence_run_id", "evidence", ["run_id"])
    op.create_index("ix_evidence_created_at", "evidence", ["created_at"])


def downgrade() -> None:
    """Forward-only."""
    raise NotImplementedError("the evidence store's migrations are forward-only")
