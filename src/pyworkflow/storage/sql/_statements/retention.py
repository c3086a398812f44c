"""The statements of retention: deleting ended runs with every row that belongs to them."""

from __future__ import annotations

import sqlalchemy as sa

from pyworkflow.storage.sql._statements.stream_rows import DELETE_STREAM_ROWS
from pyworkflow.storage.sql._terms import ENDED, in_list, param
from pyworkflow.storage.sql.schema import events, hooks, runs, step_leases

__all__ = ["DELETE_ENDED_RUNS", "DELETE_RUN_ROWS", "ENDED_RUNS", "RUN_OWNED_TABLES"]

RUN_OWNED_TABLES: tuple[sa.Table, ...] = (events, hooks, step_leases)
"""Tables whose rows belong to one run (a ``run_id`` column): a pruned run's rows go from each.

Every dialect builds its deletes from this tuple, so a new per-run table is one more entry here
and nothing else."""

ENDED_RUNS = (
    sa.select(runs.c.run_id)
    .where(
        in_list(runs.c.status, values=ENDED),
        # Implied by the next term (a run ends after it starts), and what lets the scan be an
        # index range over the runs created before the bound (SQLite: ix_runs_status_created).
        runs.c.created_at < param("b_ended_before", sa.Float),
        runs.c.completed_at < param("b_ended_before", sa.Float),
    )
    # No ORDER BY: any qualifying runs will do, so the scan stops after ``b_limit`` of them.
    # (PostgreSQL adds one, see ``postgres/_one_trip.PRUNE_ONE_TRIP``.)
    .limit(param("b_limit", sa.Integer))
)
"""Up to ``b_limit`` ids of runs in a terminal status that ended before ``b_ended_before``."""

DELETE_ENDED_RUNS = (
    sa.delete(runs).where(runs.c.run_id.in_(ENDED_RUNS.scalar_subquery())).returning(runs.c.run_id)
)
"""Delete the rows of :data:`ENDED_RUNS`, returning their ids (then :data:`DELETE_RUN_ROWS`)."""

DELETE_RUN_ROWS = (
    # The stream runs these runs drive, with their subscriptions, signals and deliveries.
    *DELETE_STREAM_ROWS,
    *(sa.delete(table).where(in_list(table.c.run_id, "b_ids")) for table in RUN_OWNED_TABLES),
)
"""Delete every row of the runs listed in ``b_ids`` but their own: those of
:data:`RUN_OWNED_TABLES`, and the stream runs they drive (``stream_rows.DELETE_STREAM_ROWS``)."""
