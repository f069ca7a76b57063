"""Workers and schedules: goal leases, scheduled goals, worker heartbeats.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08

``goal_leases`` holds one row per running goal (who runs it and its heartbeat), so that a goal is
run by one process at a time and taken over when its process dies. ``schedules`` holds scheduled
goals; ``workers`` the ``apex worker`` processes. ``goals`` gets ``queued_at`` (put on the queue
for workers) and ``schedule`` (the schedule that fired it). On PostgreSQL, procrastinate keeps
its own job tables beside these (applied by the first worker). Forward-only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add goals.queued_at and goals.schedule; create goal_leases, schedules and workers."""
    with op.batch_alter_table("goals") as batch:
        batch.add_column(sa.Column("queued_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("schedule", sa.String(), nullable=True))
        batch.create_index("ix_goals_schedule", ["schedule"])
    op.create_table(
        "goal_leases",
        sa.Column("goal_id", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["goal_id"], ["goals.id"], name="fk_goal_leases_goal_id_goals"),
        sa.PrimaryKeyConstraint("goal_id", name="pk_goal_leases"),
    )
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("next_fire_at", sa.DateTime(), nullable=False),
        sa.Column("last_fired_at", sa.DateTime(), nullable=True),
        sa.Column("last_goal_id", sa.String(), nullable=True),
        sa.Column("note", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_schedules"),
    )
    op.create_index("ix_schedules_next_fire_at", "schedules", ["next_fire_at"])
    op.create_table(
        "workers",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workers"),
    )


def downgrade() -> None:
    """Forward-only."""
    raise NotImplementedError("the evidence store's migrations are forward-only")
