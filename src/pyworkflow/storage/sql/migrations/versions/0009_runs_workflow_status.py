"""Counts per workflow: the index ix_runs_workflow_status (workflow_name, status, created_at).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Migrations are frozen history: the index is spelled out here, never imported from schema.py.
A count of one workflow's runs per status (the dashboard's live counts of a workflow, its
Workflows page, ``Storage.count_runs(workflow_name=...)``) reads this index alone, the
workflow's entries only, ``since`` included; without it each of the workflow's rows was read.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_workflow_status", "runs", ["workflow_name", "status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_workflow_status", table_name="runs")
