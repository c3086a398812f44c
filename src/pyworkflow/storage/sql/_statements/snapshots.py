"""The statements of run snapshots: a run read whole, and the rows a copy must find free.

A snapshot (``records.RunSnapshot``) is a run's row with every row that belongs to it, read by
run ids (``b_ids``) for a copy to another storage. The reads order each table the way its
records are listed; the checks of a write name the runs holding what the copy needs free;
``retention.DELETE_RUN_ROWS`` and :data:`DELETE_RUNS` take back runs a copy wrote.
"""

from __future__ import annotations

import sqlalchemy as sa

from pyworkflow.storage.sql._terms import in_list, param
from pyworkflow.storage.sql.schema import events, hooks, runs, step_leases

__all__ = [
    "COPY_INSERTS",
    "DELETE_RUNS",
    "EVENTS_OF_RUNS",
    "HOOKS_OF_RUNS",
    "RUNS_BY_IDS",
    "RUNS_HOLDING_KEYS",
    "RUNS_HOLDING_TOKENS",
    "STEP_LEASES_OF_RUNS",
]

RUNS_BY_IDS = sa.select(runs).where(in_list(runs.c.run_id, "b_ids"))
"""The rows of the runs listed in ``b_ids`` (any order)."""

EVENTS_OF_RUNS = (
    sa.select(events.c.run_id, events.c.seq, events.c.type, events.c.payload, events.c.created_at)
    .where(in_list(events.c.run_id, "b_ids"))
    .order_by(events.c.run_id, events.c.seq)
)
"""The logs of the runs listed in ``b_ids``, run by run, in ``seq`` order."""

HOOKS_OF_RUNS = (
    sa.select(hooks)
    .where(in_list(hooks.c.run_id, "b_ids"))
    .order_by(hooks.c.run_id, hooks.c.created_at, hooks.c.token_hash)
)
"""The hooks of the runs listed in ``b_ids``, run by run, oldest first."""

STEP_LEASES_OF_RUNS = (
    sa.select(step_leases)
    .where(in_list(step_leases.c.run_id, "b_ids"))
    .order_by(step_leases.c.run_id, step_leases.c.step_id)
)
"""The step lease rows of the runs listed in ``b_ids``, run by run, by ``step_id``."""

RUNS_HOLDING_KEYS = sa.select(runs.c.run_id, runs.c.idempotency_key).where(
    in_list(runs.c.idempotency_key, "b_keys")
)
"""The runs holding one of the idempotency keys listed in ``b_keys``, with the key."""

RUNS_HOLDING_TOKENS = sa.select(hooks.c.run_id, hooks.c.token_hash).where(
    in_list(hooks.c.token_hash, "b_hashes")
)
"""The runs holding a hook of one of the token hashes listed in ``b_hashes``, with the hash."""

DELETE_RUNS = sa.delete(runs).where(in_list(runs.c.run_id, "b_ids"))
"""Delete the rows of the runs listed in ``b_ids`` (their other rows: ``DELETE_RUN_ROWS``)."""


def _insert_row(table: sa.Table) -> sa.Insert:
    """``INSERT INTO table`` of every column, each bound as ``b_<column>``."""
    return sa.insert(table).values({c.name: param(f"b_{c.name}", c.type) for c in table.c})


COPY_INSERTS = tuple(_insert_row(table) for table in (runs, events, hooks, step_leases))
"""Inserts of a row of ``runs``, ``events``, ``hooks`` and ``step_leases``, as they are."""
