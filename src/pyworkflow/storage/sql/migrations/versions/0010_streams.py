"""Stream runs: the tables of stream runs, their subscriptions, signals and deliveries.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

Migrations are frozen history: the tables are spelled out here, never imported from schema.py.
New tables only: no existing row is touched.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_runs",
        sa.Column("stream_run_id", sa.String(), primary_key=True),
        sa.Column("stream", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_batch", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("wait_hook", sa.String(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_stream_runs_stream_created", "stream_runs", ["stream", "created_at"])
    op.create_table(
        "stream_subscriptions",
        sa.Column("stream_run_id", sa.String(), primary_key=True),
        sa.Column("step_name", sa.String(), primary_key=True),
        sa.Column("stream", sa.String(), nullable=False),
        sa.Column("signal_types", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("seen_seq", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("has_result", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("checkpoint", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("resume_signals", sa.Text(), nullable=True),
        sa.Column("deliveries", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "stream_signals",
        sa.Column("stream_run_id", sa.String(), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("signal_id", sa.String(), nullable=False),
        sa.Column("stream", sa.String(), nullable=False),
        sa.Column("signal_type", sa.String(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("emitted_at", sa.Float(), nullable=False),
        sa.Column("source_run_id", sa.String(), nullable=True),
        sa.Column("idempotency_key", sa.String(), nullable=True),
        sa.UniqueConstraint(
            "stream_run_id", "idempotency_key", name="uq_stream_signals_idempotency_key"
        ),
    )
    op.create_table(
        "stream_deliveries",
        sa.Column("stream_run_id", sa.String(), primary_key=True),
        sa.Column("batch", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("step_name", sa.String(), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("refused", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_table("stream_deliveries")
    op.drop_table("stream_signals")
    op.drop_table("stream_subscriptions")
    op.drop_index("ix_stream_runs_stream_created", table_name="stream_runs")
    op.drop_table("stream_runs")
