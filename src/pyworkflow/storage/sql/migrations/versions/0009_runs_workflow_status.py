"""Counts per workflow and listings by tag: indexes ix_runs_workflow_status and ix_runs_tags.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Migrations are frozen history: the indexes are spelled out here, never imported from schema.py.
A count of one workflow's runs per status (the dashboard's live counts of a workflow, its
Workflows page, ``Storage.count_runs(workflow_name=...)``) reads ix_runs_workflow_status alone,
the workflow's entries only, ``since`` included; without it each of the workflow's rows was
read. A listing by tag walks ix_runs_tags for the few distinct ``tags`` cells holding the tag,
then reads each cell's runs newest first; without it a rare tag scanned every run.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_workflow_status", "runs", ["workflow_name", "status", "created_at"])
    op.create_index("ix_runs_tags", "runs", ["tags", "created_at", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_runs_tags", table_name="runs")
    op.drop_index("ix_runs_workflow_status", table_name="runs")
