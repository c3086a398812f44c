"""The statements of stream runs (``storage/streams.py``).

Every write to a stream run starts with an UPDATE of its ``stream_runs`` row, which holds the
row until the transaction ends: emitters, takers and the arming of the waiter of one stream run
take turns on it, while different stream runs never meet.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from pyworkflow.storage.sql._statements.stream_ends import OPEN
from pyworkflow.storage.sql._terms import param, upsert
from pyworkflow.storage.sql.schema import (
    hooks,
    stream_deliveries,
    stream_runs,
    stream_signals,
    stream_subscriptions,
)

__all__ = [
    "ADOPT",
    "ADVANCE_BATCH",
    "ARM_WAIT",
    "BATCH_DELIVERIES",
    "CLEAR_WAIT",
    "DELIVERY_REFUSED",
    "GET_STREAM_RUN",
    "INSERT_DELIVERY",
    "INSERT_SIGNAL",
    "INSERT_SUBSCRIPTION",
    "LIST_DELIVERIES",
    "LIST_SIGNALS",
    "LIST_SUBSCRIPTIONS",
    "LOCK_STREAM_RUN",
    "MOVE_CURSOR",
    "NEXT_SEQ",
    "OUTCOME_CHECKPOINT",
    "OUTCOME_REFUSED",
    "OUTCOME_RESULT",
    "OUTCOME_STATUS",
    "SIGNAL_BY_KEY",
    "SIGNAL_WINDOW_ROWS",
    "STREAM_STATUS",
    "WAKE_PAYLOAD",
    "insert_stream_run",
    "list_stream_runs_statement",
]

_ID = stream_runs.c.stream_run_id == param("b_stream_run_id", sa.String)

GET_STREAM_RUN = sa.select(stream_runs).where(_ID)


@functools.cache
def insert_stream_run(dialect: str) -> Any:
    """Insert a stream run's row unless its id is taken (then no row changes)."""
    values = {c.name: param(f"b_{c.name}", c.type) for c in stream_runs.c}
    return upsert(dialect, stream_runs).values(values).on_conflict_do_nothing()


def _insert(table: sa.Table) -> sa.Insert:
    """An INSERT of one row, its parameters named ``b_<column>`` (``Session.insert`` rows)."""
    return sa.insert(table).values({c.name: param(f"b_{c.name}", c.type) for c in table.c})


INSERT_SUBSCRIPTION = _insert(stream_subscriptions)

LOCK_STREAM_RUN = (
    sa.update(stream_runs)
    .where(_ID)
    .values(updated_at=stream_runs.c.updated_at)
    .returning(stream_runs.c.last_seq)
)
"""Take the stream run's row for this transaction, changing nothing; its ``last_seq``."""

NEXT_SEQ = (
    sa.update(stream_runs)
    .where(_ID, OPEN)
    .values(last_seq=stream_runs.c.last_seq + 1, updated_at=param("b_now", sa.Float))
    .returning(
        stream_runs.c.last_seq,
        stream_runs.c.wait_hook,
        stream_runs.c.last_batch,
        stream_runs.c.run_id,
    )
)
"""The seq of a new signal, the hook to deliver (if the driver waits on one), the last batch
and the driving run; no row for a stream run that has ended."""

CLEAR_WAIT = sa.update(stream_runs).where(_ID).values(wait_hook=None)

ADOPT = (
    sa.update(stream_runs)
    .where(
        _ID,
        stream_runs.c.run_id.in_(
            [param("b_previous_run_id", sa.String), param("b_run_id", sa.String)]
        ),
    )
    .values(run_id=param("b_run_id", sa.String), updated_at=param("b_now", sa.Float))
    .returning(stream_runs.c.run_id)
)
"""Hand a stream run to the run that continued its driver (or find it handed already)."""

ARM_WAIT = (
    sa.update(stream_runs)
    .where(_ID)
    .values(wait_hook=param("b_token_hash", sa.String))
    .returning(stream_runs.c.last_seq, stream_runs.c.last_batch, stream_runs.c.run_id)
)

WAKE_PAYLOAD = (
    sa.update(hooks)
    .where(hooks.c.token_hash == param("b_token_hash", sa.String))
    .values(payload=param("b_payload", sa.Text))
)
"""The batch an emit took for the driver it woke, as the payload of the hook it delivered."""

ADVANCE_BATCH = (
    sa.update(stream_runs)
    .where(_ID, stream_runs.c.last_batch == param("b_batch", sa.Integer) - 1)
    .values(last_batch=param("b_batch", sa.Integer), updated_at=param("b_now", sa.Float))
    .returning(stream_runs.c.last_seq)
)
"""Take batch ``b_batch``: changes no row unless the stream run is at the batch before."""

STREAM_STATUS = sa.update(stream_runs).where(_ID).values(status=param("b_status", sa.String))

INSERT_SIGNAL = _insert(stream_signals)

_SIGNALS_OF_RUN = stream_signals.c.stream_run_id == param("b_stream_run_id", sa.String)

SIGNAL_BY_KEY = sa.select(stream_signals).where(
    _SIGNALS_OF_RUN, stream_signals.c.idempotency_key == param("b_key", sa.String)
)

LIST_SIGNALS = (
    sa.select(stream_signals)
    .where(_SIGNALS_OF_RUN, stream_signals.c.seq > param("b_after", sa.Integer))
    .order_by(stream_signals.c.seq)
    .limit(param("b_limit", sa.Integer))
)

SIGNAL_WINDOW_ROWS = LIST_SIGNALS
"""A batch's window of signals: the same query, read inside the take's transaction."""

_SUB = (
    stream_subscriptions.c.stream_run_id == param("b_stream_run_id", sa.String),
    stream_subscriptions.c.step_name == param("b_step_name", sa.String),
)

LIST_SUBSCRIPTIONS = (
    sa.select(stream_subscriptions)
    .where(stream_subscriptions.c.stream_run_id == param("b_stream_run_id", sa.String))
    .order_by(stream_subscriptions.c.step_name)
)

OUTCOME_STATUS = (
    sa.update(stream_subscriptions)
    .where(*_SUB)
    .values(
        status=param("b_status", sa.String),
        detail=param("b_detail", sa.Text),
        resume_signals=param("b_resume_signals", sa.Text),
        updated_at=param("b_now", sa.Float),
    )
)

OUTCOME_RESULT = (
    sa.update(stream_subscriptions)
    .where(*_SUB)
    .values(result=param("b_result", sa.Text), has_result=sa.true())
)

OUTCOME_CHECKPOINT = (
    sa.update(stream_subscriptions).where(*_SUB).values(checkpoint=param("b_checkpoint", sa.Text))
)

OUTCOME_REFUSED = (
    sa.update(stream_subscriptions).where(*_SUB).values(refused=stream_subscriptions.c.refused + 1)
)

DELIVERY_REFUSED = (
    sa.update(stream_deliveries)
    .where(
        stream_deliveries.c.stream_run_id == param("b_stream_run_id", sa.String),
        stream_deliveries.c.batch == param("b_batch", sa.Integer),
        stream_deliveries.c.step_name == param("b_step_name", sa.String),
    )
    .values(refused=sa.true())
)
"""Mark a delivery refused (its payload failed the step's schema)."""

MOVE_CURSOR = (
    sa.update(stream_subscriptions)
    .where(*_SUB)
    .values(
        seen_seq=param("b_seen_seq", sa.Integer),
        status=param("b_status", sa.String),
        deliveries=stream_subscriptions.c.deliveries + param("b_delivered", sa.Integer),
        updated_at=param("b_now", sa.Float),
    )
)
"""A subscription's cursor moved by a batch, with its status (``running`` when delivered)."""

INSERT_DELIVERY = _insert(stream_deliveries)

_DELIVERIES_OF_RUN = stream_deliveries.c.stream_run_id == param("b_stream_run_id", sa.String)

BATCH_DELIVERIES = (
    sa.select(stream_deliveries, stream_signals)
    .select_from(
        stream_deliveries.outerjoin(
            stream_signals,
            sa.and_(
                stream_signals.c.stream_run_id == stream_deliveries.c.stream_run_id,
                stream_signals.c.seq == stream_deliveries.c.seq,
            ),
        )
    )
    .where(_DELIVERIES_OF_RUN, stream_deliveries.c.batch == param("b_batch", sa.Integer))
    .order_by(stream_deliveries.c.step_name)
)
"""A batch's deliveries, each with its signal's columns (NULLs for a start)."""

LIST_DELIVERIES = (
    sa.select(stream_deliveries)
    .where(_DELIVERIES_OF_RUN)
    .order_by(stream_deliveries.c.batch, stream_deliveries.c.step_name)
)


def list_stream_runs_statement(*, stream: str | None, limit: int) -> sa.Select[Any]:
    """Stream runs newest first, of one stream or all (built per call: a listing)."""
    query = sa.select(stream_runs)
    if stream is not None:
        query = query.where(stream_runs.c.stream == stream)
    order = (stream_runs.c.created_at.desc(), stream_runs.c.stream_run_id.desc())
    return query.order_by(*order).limit(limit)
