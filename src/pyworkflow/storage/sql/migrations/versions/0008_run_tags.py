"""Run tags: the tags column of runs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Migrations are frozen history: the column is spelled out here, never imported from schema.py.
A run's ``@workflow(tags=[...])`` is stored as ``",a,b,"`` (tags hold no comma), so that one
``LIKE '%,a,%'`` finds a tag on SQLite and PostgreSQL alike; runs stored before this revision
have none (NULL). Adding a nullable column only changes the catalogue on both: no row is
rewritten. No index: ``runs list --tag`` is an operator's look, not a hot path.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("tags", sa.String(), nullable=True))


def downgrade() -> None:
    # SQLite drops columns by copying the table: batch mode does that, PostgreSQL alters.
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("tags")
