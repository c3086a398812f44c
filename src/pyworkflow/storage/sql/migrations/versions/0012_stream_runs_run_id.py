"""A run's stream runs by the run: index ix_stream_runs_run_id.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Migrations are frozen history: the index is spelled out here, never imported from schema.py.
A stream run belongs to the run that drives it. Retention deletes a pruned run's stream runs,
``db copy`` reads a copied run's, and ``runs show`` and the dashboard look up the stream run
of the run they show, each by ``stream_runs.run_id``; without this index each of those read
every stream run.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_stream_runs_run_id", "stream_runs", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_stream_runs_run_id", table_name="stream_runs")
