"""The statements of stream runs as their driving runs carry them: read whole, copied, deleted.

A stream run belongs to the run that drives it (``stream_runs.run_id``), and its subscriptions,
signals and deliveries belong to it (``stream_run_id``). So a run read whole for a copy reads
its stream runs (:data:`STREAM_RUNS_OF_RUNS`, then the rest by stream run id), and a run deleted
(retention, a copy taking a run back) takes its stream rows along (:func:`stream_deletes`, the
same statements on every dialect, and PostgreSQL's one-trip prune).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pyworkflow.events import RunStatus
from pyworkflow.storage.sql._terms import in_list, param
from pyworkflow.storage.sql.schema import (
    runs,
    stream_deliveries,
    stream_runs,
    stream_signals,
    stream_subscriptions,
)

__all__ = [
    "DELETE_STREAM_ROWS",
    "DELIVERIES_OF_STREAM_RUNS",
    "HAND_ON_CONTINUED",
    "SIGNALS_OF_STREAM_RUNS",
    "STREAM_COPY_INSERTS",
    "STREAM_OWNED_TABLES",
    "STREAM_ROW_TABLES",
    "STREAM_RUNS_BY_IDS",
    "STREAM_RUNS_OF_RUNS",
    "SUBSCRIPTIONS_OF_STREAM_RUNS",
    "stream_deletes",
]

STREAM_OWNED_TABLES: tuple[sa.Table, ...] = (
    stream_subscriptions,
    stream_signals,
    stream_deliveries,
)
"""Tables whose rows belong to one stream run (a ``stream_run_id`` column)."""

STREAM_ROW_TABLES = (*STREAM_OWNED_TABLES, stream_runs)
"""The tables :func:`stream_deletes` deletes from, in its order."""

STREAM_RUNS_OF_RUNS = (
    sa.select(stream_runs)
    .where(in_list(stream_runs.c.run_id, "b_ids"))
    .order_by(stream_runs.c.run_id, stream_runs.c.stream_run_id)
)
"""The stream runs driven by the runs listed in ``b_ids``, run by run, by stream run id."""

STREAM_RUNS_BY_IDS = sa.select(stream_runs.c.stream_run_id, stream_runs.c.run_id).where(
    in_list(stream_runs.c.stream_run_id, "b_stream_ids")
)
"""The stream runs of the ids listed in ``b_stream_ids``, with the run driving each."""

SUBSCRIPTIONS_OF_STREAM_RUNS = (
    sa.select(stream_subscriptions)
    .where(in_list(stream_subscriptions.c.stream_run_id, "b_stream_ids"))
    .order_by(stream_subscriptions.c.stream_run_id, stream_subscriptions.c.step_name)
)
"""The subscriptions of the stream runs listed in ``b_stream_ids``, by step name."""

SIGNALS_OF_STREAM_RUNS = (
    sa.select(stream_signals)
    .where(in_list(stream_signals.c.stream_run_id, "b_stream_ids"))
    .order_by(stream_signals.c.stream_run_id, stream_signals.c.seq)
)
"""The signals of the stream runs listed in ``b_stream_ids``, in seq order."""

DELIVERIES_OF_STREAM_RUNS = (
    sa.select(stream_deliveries)
    .where(in_list(stream_deliveries.c.stream_run_id, "b_stream_ids"))
    .order_by(
        stream_deliveries.c.stream_run_id,
        stream_deliveries.c.batch,
        stream_deliveries.c.step_name,
    )
)
"""The deliveries of the stream runs listed in ``b_stream_ids``, by batch then step name."""


def stream_deletes(driving: sa.ColumnElement[bool]) -> tuple[sa.Delete, ...]:
    """Deletes of every stream row of the stream runs whose ``stream_runs`` row is ``driving``.

    ``driving`` is a condition on ``stream_runs`` (which runs drive them). The stream runs' own
    rows go last: the other deletes find theirs through them. (In one statement, as
    PostgreSQL's prune runs them, every part sees the rows as they were before it.)
    """
    owned = sa.select(stream_runs.c.stream_run_id).where(driving).scalar_subquery()
    return (
        *(sa.delete(t).where(t.c.stream_run_id.in_(owned)) for t in STREAM_OWNED_TABLES),
        sa.delete(stream_runs).where(driving),
    )


DELETE_STREAM_ROWS = stream_deletes(in_list(stream_runs.c.run_id, "b_ids"))
"""Delete the stream runs driven by the runs listed in ``b_ids``, with all their rows."""


_driver = runs.alias("driver")
_successor = runs.alias("successor")

HAND_ON_CONTINUED = (
    sa.update(stream_runs)
    .where(
        sa.exists().where(
            _driver.c.run_id == stream_runs.c.run_id,
            _driver.c.status == RunStatus.CONTINUED_AS_NEW.value,
            _driver.c.completed_at < param("b_ended_before", sa.Float),
            sa.exists().where(_successor.c.run_id == _driver.c.continued_to),
        )
    )
    .values(
        run_id=sa.select(_driver.c.continued_to)
        .where(_driver.c.run_id == stream_runs.c.run_id)
        .scalar_subquery()
    )
)
"""Hand each stream run whose driver continued as new before ``b_ended_before`` to the
driver's successor, when that still exists (as the successor's first step would, ``ADOPT``).

Retention runs it before it picks the runs to delete: a driver pruned between its end and its
successor's first step would otherwise take along the stream run its successor is about to
adopt. What is still driven by a pruned run then has no successor to go on, and goes with it.
Both lookups are by primary key, from each stream run's row."""


def _insert_row(table: sa.Table) -> sa.Insert:
    """``INSERT INTO table`` of every column, each bound as ``b_<column>``."""
    values: dict[str, Any] = {c.name: param(f"b_{c.name}", c.type) for c in table.c}
    return sa.insert(table).values(values)


STREAM_COPY_INSERTS = tuple(
    _insert_row(table)
    for table in (stream_runs, stream_subscriptions, stream_signals, stream_deliveries)
)
"""Inserts of a row of ``stream_runs``, its subscriptions, signals and deliveries, as they are."""
