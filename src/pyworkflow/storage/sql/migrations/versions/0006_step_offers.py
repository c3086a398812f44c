"""Step queues on the local executor: the queue and offered_at columns of step_leases.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Migrations are frozen history: the columns are spelled out here, never imported from schema.py.
Both are nullable, so adding them changes only the catalogue; existing rows (Celery step
leases) keep NULL, which no local worker lists as an offer.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("step_leases", sa.Column("queue", sa.String(), nullable=True))
    op.add_column("step_leases", sa.Column("offered_at", sa.Float(), nullable=True))
    op.create_index("ix_step_leases_queue", "step_leases", ["queue"])


def downgrade() -> None:
    op.drop_index("ix_step_leases_queue", table_name="step_leases")
    # SQLite drops columns by copying the table: batch mode does that, PostgreSQL alters.
    with op.batch_alter_table("step_leases") as batch:
        batch.drop_column("offered_at")
        batch.drop_column("queue")
