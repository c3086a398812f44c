"""Owners: the owners table, for taking over the runs of a dead worker without waiting.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Migrations are frozen history: the table is spelled out here, never imported from schema.py.
A new table only: no existing row is rewritten.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owners",
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("lock_key", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name="pk_owners"),
    )


def downgrade() -> None:
    op.drop_table("owners")
