"""PostgreSQL's session keeps every write one statement, as its autocommit connections need."""

from __future__ import annotations

from pyworkflow.storage.postgres._session import PgSession
from pyworkflow.storage.sql import COMPOSITE_STEPS, Session


def test_every_step_of_several_writes_is_one_statement_on_postgresql() -> None:
    # A script's statements each commit on their own on PostgreSQL (no transaction block), so
    # a step whose default runs several write statements would not be atomic there.
    inherited = [
        step for step in COMPOSITE_STEPS if getattr(PgSession, step) is getattr(Session, step)
    ]
    assert inherited == []
