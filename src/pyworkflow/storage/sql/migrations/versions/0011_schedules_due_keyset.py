"""A tick reads its due schedules a page at a time: ix_schedules_due_at on (due_at, schedule_id).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Migrations are frozen history: the index is spelled out here, never imported from schema.py.
A scheduler reads the due schedules in pages of a hundred, each page starting past the last
row of the one before (a keyset on ``(due_at, schedule_id)``), so the first fires are written
while the next page is read. With ``due_at`` alone in the index, schedules due at the same
moment (a thousand daily jobs at midnight) would be re-read and sorted for every page.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_schedules_due_at", table_name="schedules")
    op.create_index("ix_schedules_due_at", "schedules", ["due_at", "schedule_id"])


def downgrade() -> None:
    op.drop_index("ix_schedules_due_at", table_name="schedules")
    op.create_index("ix_schedules_due_at", "schedules", ["due_at"])
