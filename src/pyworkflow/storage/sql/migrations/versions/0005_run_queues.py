"""Task queues: the queue column of runs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Migrations are frozen history: the column is spelled out here, never imported from schema.py.
Runs stored before this revision belong to the default queue, ``pyworkflow``: the column's
server default fills them in. Both SQLite's ALTER TABLE ADD COLUMN and PostgreSQL's (11 and
later, for a constant default) only change the catalogue: no row is rewritten. No index: a
claim filters on the queue while it walks ``ix_runs_wake_at``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "runs", sa.Column("queue", sa.String(), nullable=False, server_default="pyworkflow")
    )


def downgrade() -> None:
    # SQLite drops columns by copying the table: batch mode does that, PostgreSQL alters.
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("queue")
