"""Goal loops: the goals table and one row per goal cycle.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Forward-only. LangGraph's checkpointer keeps its own tables in the same database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create goals and goal_cycles."""
    op.create_table(
        "goals",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("objective", sa.Text(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("best_answer", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_goals"),
    )
    op.create_index("ix_goals_updated_at", "goals", ["updated_at"])
    op.create_index("ix_goals_state", "goals", ["state"])
    op.create_table(
        "goal_cycles",
        sa.Column("goal_id", sa.String(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["goal_id"], ["goals.id"], name="fk_goal_cycles_goal_id_goals"
        ),
        sa.PrimaryKeyConstraint("goal_id", "cycle", name="pk_goal_cycles"),
    )


def downgrade() -> None:
    """Forward-only."""
    raise NotImplementedError("the evidence store's migrations are forward-only")
