"""Hooks, child runs and continue-as-new: the hooks table and three columns of runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-20

Migrations are frozen history: the tables are spelled out here, never imported from schema.py.
The new columns are nullable and come last, so adding them rewrites no row (SQLite's ALTER TABLE
ADD COLUMN and PostgreSQL's both only change the catalogue).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("parent_close_policy", sa.String(), nullable=True))
    op.add_column("runs", sa.Column("continued_from", sa.String(), nullable=True))
    op.add_column("runs", sa.Column("continued_to", sa.String(), nullable=True))
    op.create_table(
        "hooks",
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("hook_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("payload_type", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_hooks"),
        sa.UniqueConstraint("run_id", "hook_id", name="uq_hooks_run_id_hook_id"),
    )
    op.create_index("ix_hooks_status_created", "hooks", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_hooks_status_created", table_name="hooks")
    op.drop_table("hooks")
    # SQLite drops columns by copying the table: batch mode does that, PostgreSQL alters.
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("continued_to")
        batch.drop_column("continued_from")
        batch.drop_column("parent_close_policy")
