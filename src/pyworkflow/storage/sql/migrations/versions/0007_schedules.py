"""Schedules: the schedules table, and the schedule and slot of the runs a schedule starts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Migrations are frozen history: the table and columns are spelled out here, never imported from
schema.py. A new table and two nullable columns: no existing row is rewritten (runs stored
before this revision were started by no schedule).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("schedule_id", sa.String(), nullable=False),
        sa.Column("workflow_name", sa.String(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("overlap_policy", sa.String(), nullable=False),
        sa.Column("catchup_window", sa.Float(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("next_slot_at", sa.Float(), nullable=True),
        sa.Column("due_at", sa.Float(), nullable=True),
        sa.Column("buffered", sa.Text(), nullable=False),
        sa.Column("total_runs", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("skipped_runs", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_slot_at", sa.Float(), nullable=True),
        sa.Column("last_run_id", sa.String(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("schedule_id", name="pk_schedules"),
    )
    op.create_index("ix_schedules_due_at", "schedules", ["due_at"])
    op.add_column("runs", sa.Column("schedule_id", sa.String(), nullable=True))
    op.add_column("runs", sa.Column("schedule_slot_at", sa.Float(), nullable=True))
    op.create_index("ix_runs_schedule_id", "runs", ["schedule_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_schedule_id", table_name="runs")
    # SQLite drops columns by copying the table: batch mode does that, PostgreSQL alters.
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("schedule_slot_at")
        batch.drop_column("schedule_id")
    op.drop_index("ix_schedules_due_at", table_name="schedules")
    op.drop_table("schedules")
