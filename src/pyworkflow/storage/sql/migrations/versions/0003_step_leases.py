"""Step leases: the step_leases table, for steps executed away from their run's driver (Celery).

Revision ID: 0003
Revises: 0002
Create Date: 2026-05-27

Migrations are frozen history: the table is spelled out here, never imported from schema.py.
A new table only: no existing row is rewritten.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "step_leases",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.Column("deliveries", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("run_id", "step_id", name="pk_step_leases"),
    )


def downgrade() -> None:
    op.drop_table("step_leases")
