"""Evidence per (model, role, category), and the record later verdicts are attributed by.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

A model's failures as judge or critic must not bench its panel seat, nor a critic's success reset
a failing panelist's streak: aggregates and evidence rows get a ``role`` (panel, critic, judge)
and the aggregates' key becomes (model, role, category). Every existing aggregate and evidence
row becomes a panel row, as they were read before. ``runs.evidence`` keeps the cycle's evidence
record (labels, models, extracted answers, the weights the vote used, the number of options), so
``apex feedback`` attributes a later verdict exactly as the cycle would have. Forward-only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the role columns (existing rows: panel), re-key aggregates, add runs.evidence."""
    with op.batch_alter_table("aggregates") as batch:
        batch.add_column(
            sa.Column("role", sa.String(), nullable=False, server_default="panel")
        )
        batch.drop_constraint("pk_aggregates", type_="primary")
        batch.create_primary_key("pk_aggregates", ["model", "role", "category"])
    with op.batch_alter_table("evidence") as batch:
        batch.add_column(
            sa.Column("role", sa.String(), nullable=False, server_default="panel")
        )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("evidence", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Forward-only."""
    raise NotImplementedError("the evidence store's migrations are forward-only")
