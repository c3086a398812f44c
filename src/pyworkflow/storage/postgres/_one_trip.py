"""PostgreSQL's writes in one round trip: the shared statements composed with data-modifying CTEs.

Why this exists: on PostgreSQL each statement is a network round trip, and a transaction of
``BEGIN``, an UPDATE, an INSERT and ``COMMIT`` costs about 2.5x a single-row commit (B1 on
PostgreSQL). PostgreSQL runs data-modifying CTEs inside one statement, and a statement sent
outside a transaction block commits on its own; so each write here is one statement: one round
trip, one commit. The conditions stay those of ``storage/sql/_statements/`` (these wrap its
statements), so the dialects cannot drift apart in what they accept. Each is an override of a
step of the shared scripts (``_session.PgSession``), or PostgreSQL's group commit
(``_appends.py``, ``_creates.py``).

Notifications ride along: ``pg_notify`` in the same statement is delivered when it commits and
not at all when it rolls back, so a listener never hears of a change that did not happen.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pyworkflow.events import EventType
from pyworkflow.storage.sql._statements.appends import APPEND, APPEND_FIELDS, append_update
from pyworkflow.storage.sql._statements.leases import claim_values, runnable_runs
from pyworkflow.storage.sql._statements.retention import ENDED_RUNS, RUN_OWNED_TABLES
from pyworkflow.storage.sql._statements.runs import REOPEN_FAILED_RUN
from pyworkflow.storage.sql._statements.stream_rows import STREAM_ROW_TABLES, stream_deletes
from pyworkflow.storage.sql.schema import events, runs, stream_runs

__all__ = [
    "ANNOUNCE",
    "APPEND_BATCH",
    "APPEND_ONE",
    "CREATE_RUN_BATCH",
    "CREATE_RUN_ONE_TRIP",
    "NOTIFY_CHANNEL",
    "PRUNE_ONE_TRIP",
    "REOPEN_ONE_TRIP",
    "claim_one_trip",
    "event_arrays",
    "json_rows",
    "log_batch_events",
    "log_events_if",
    "notify",
    "notifying",
    "take_due_one_trip",
]

NOTIFY_CHANNEL = "pyworkflow"
"""The LISTEN/NOTIFY channel, suffixed ``.<schema>`` for a storage in its own schema; statements
take it as ``b_channel``. Payloads: ``runnable <run_id>`` (an outside writer made the run due: a
worker should claim it now) and ``ended <run_id>`` (waiters should read its result)."""


def _p(name: str, type_: Any) -> Any:
    return sa.bindparam(name, type_=type_)


def notify(kind: str, run_id: Any) -> Any:
    """``pg_notify`` of ``<kind> <run_id>`` on the channel ``b_channel``."""
    return sa.func.pg_notify(_p("b_channel", sa.Text), sa.literal(f"{kind} ", sa.Text) + run_id)


def json_rows(param: str, columns: dict[str, Any], name: str) -> Any:
    """The rows of the JSON array bound as ``param``: an object per row, typed as ``columns``.

    Why batches travel as one JSON document, not an array per column: asyncpg encodes arrays
    element by element in Python (with an ``isinstance`` against ``collections.abc`` for each
    element, a tenth of a batch's client time), on top of the lists we built per column; one
    document from the C JSON encoder replaces both, and PostgreSQL parses it once (2% fewer
    instructions per B2 step, ``BENCHMARKS.md``). Keys not in ``columns`` are ignored. A
    column of type JSON keeps its value's text as written (an event's payload, stored as that
    text); a TEXT column takes a JSON string's content.
    """
    return (
        sa.func.json_to_recordset(sa.cast(_p(param, sa.Text), postgresql.JSON))
        .table_valued(*(sa.column(column, type_) for column, type_ in columns.items()))
        .render_derived(name=name, with_types=True)
    )


EVENT_COLUMNS: dict[str, Any] = {
    "run_id": sa.String,
    "seq": sa.Integer,
    "type": sa.String,
    "payload": postgresql.JSON,
    "created_at": sa.Float,
}
"""The keys of an event in ``b_events`` (``_params.event_values(..., encoded=False)``)."""


def event_arrays(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The ``b_seqs``, ``b_types`` and ``b_payloads`` of one run's event rows (``_params.py``)."""
    return {
        "b_seqs": [row["seq"] for row in rows],
        "b_types": [row["type"] for row in rows],
        "b_payloads": [row["payload"] for row in rows],
    }


def log_events_if(guard: sa.CTE, run_id: Any) -> sa.CTE:
    """Insert the events of arrays ``b_seqs``, ``b_types``, ``b_payloads`` if ``guard`` has a row.

    The guard is the write to the run's row: no row back means it refused, and so no events.
    """
    new = (
        sa.func.unnest(
            _p("b_seqs", postgresql.ARRAY(sa.Integer)),
            _p("b_types", postgresql.ARRAY(sa.String)),
            _p("b_payloads", postgresql.ARRAY(sa.Text)),
        )
        .table_valued("seq", "type", "payload")
        .render_derived(name="new")
    )
    rows = sa.select(run_id, new.c.seq, new.c.type, new.c.payload, _p("b_now", sa.Float)).where(
        sa.select(guard.c[0]).exists()
    )
    columns = ["run_id", "seq", "type", "payload", "created_at"]
    return sa.insert(events).from_select(columns, rows).cte("logged")


# --- one run's append in one statement ----------------------------------------------------------

_advanced = APPEND.cte("advanced")

APPEND_ONE = sa.select(
    _advanced.c.signal_seq,
    _advanced.c.cancel_requested,
    # ``ended <run_id>`` when the run reached a terminal status (``b_notify``).
    sa.select(notify("ended", _p("b_run_id", sa.String)))
    .where(_p("b_notify", sa.Boolean))
    .scalar_subquery(),
).add_cte(log_events_if(_advanced, _p("b_run_id", sa.String)))
"""``appends.APPEND`` and its events (``b_seqs``, ``b_types``, ``b_payloads``) in one statement.

No row back: the seq or the lease was stale, and nothing was written. A lone append (B1) takes
this rather than :data:`APPEND_BATCH`: binding one write's values directly spares it the
batch's unpacking of a document and its join by run id (when batches were sixteen arrays, that
cost ~150 us more a call)."""

# --- group commit: many runs' appends in one statement -----------------------------------------

BATCH_APPEND_COLUMNS: dict[str, Any] = {
    **{f"b_{name}": type_ for name, type_ in APPEND_FIELDS.items()},
    "b_notify": sa.Boolean,
}
"""The keys of a write in ``b_writes``: ``_params.append_params`` and ``b_notify``."""

_writes = json_rows("b_writes", BATCH_APPEND_COLUMNS, "w")
_batch_advanced = (
    append_update(lambda name: _writes.c[f"b_{name}"])
    .returning(runs.c.run_id, runs.c.signal_seq, runs.c.cancel_requested, _writes.c.b_notify)
    .cte("advanced")
)


def log_batch_events(advanced: sa.CTE) -> sa.CTE:
    """Insert the events of ``b_events`` (:data:`EVENT_COLUMNS`) of the runs ``advanced`` returns.

    ``advanced`` returns the ids of the runs whose writes went through.
    """
    given = json_rows("b_events", EVENT_COLUMNS, "e")
    accepted = sa.select(
        given.c.run_id,
        given.c.seq,
        given.c.type,
        sa.cast(given.c.payload, sa.Text),
        given.c.created_at,
    ).where(given.c.run_id.in_(sa.select(advanced.c.run_id)))
    columns = ["run_id", "seq", "type", "payload", "created_at"]
    return sa.insert(events).from_select(columns, accepted).cte("logged")


APPEND_BATCH = sa.select(
    _batch_advanced.c.run_id,
    _batch_advanced.c.signal_seq,
    _batch_advanced.c.cancel_requested,
    sa.case(
        (_batch_advanced.c.b_notify, notify("ended", _batch_advanced.c.run_id)),
        else_=sa.null(),
    ).label("notified"),
).add_cte(log_batch_events(_batch_advanced))
"""The appends of several runs (at most one write per run) and their events, in one statement.

The writes are one JSON document (``b_writes``: an object per write, keys
:data:`BATCH_APPEND_COLUMNS`), and so are their events (``b_events``, :data:`EVENT_COLUMNS`). A
row comes back for each write that was accepted; a write without a row was refused and wrote
nothing. So concurrent runs share one round trip and one commit, as SQLite's group commit
shares one."""

_created = (
    postgresql.insert(runs)
    .values({column.name: _p(f"b_{column.name}", column.type) for column in runs.c})
    # Invariant (DESIGN §1): the unique idempotency key decides between concurrent starters;
    # the loser inserts nothing and reads the winner's run.
    .on_conflict_do_nothing()
    .returning(runs.c.run_id)
    .cte("created")
)

CREATE_RUN_ONE_TRIP = sa.select(
    _created.c.run_id,
    # ``runnable <run_id>`` when nobody leased it at creation (``b_notify``).
    sa.select(notify("runnable", _created.c.run_id))
    .where(_p("b_notify", sa.Boolean))
    .scalar_subquery(),
).add_cte(log_events_if(_created, _p("b_run_id", sa.String)))
"""A run's row (parameters ``b_<column>``) and its first events, in one statement.

No row back: the idempotency key (or the run id) was taken, and nothing was written."""


_new_runs = json_rows("b_runs", {column.name: column.type for column in runs.c}, "n")
_batch_created = (
    postgresql.insert(runs)
    .from_select([column.name for column in runs.c], sa.select(*_new_runs.c))
    .on_conflict_do_nothing()  # as CREATE_RUN_ONE_TRIP: the loser reads the winner's run
    .returning(runs.c.run_id, runs.c.lease_owner.is_(None).label("unleased"))
    .cte("created")
)

CREATE_RUN_BATCH = sa.select(
    _batch_created.c.run_id,
    sa.case(
        (_batch_created.c.unleased, notify("runnable", _batch_created.c.run_id)),
        else_=sa.null(),
    ).label("notified"),
).add_cte(log_batch_events(_batch_created))
"""The rows of several new runs (at most one per run id) and their first events, in one statement.

The runs are one JSON document (``b_runs``: an object per run, keyed by column, as
``_params.new_run_values`` gives them), and so are their events (``b_events``). A row comes back
for each run created; a run without a row was not written (its idempotency key or id was
taken). A run nobody leased is announced ``runnable``, as ``CREATE_RUN_ONE_TRIP`` does."""


ANNOUNCE = sa.select(notify("runnable", _p("b_run_id", sa.Text)))
"""``runnable b_run_id`` to the listening workers (a step of the run was offered)."""


@functools.cache
def notifying(update: sa.Update) -> sa.Select[Any]:
    """``update`` announcing ``runnable <run_id>`` for each run it made due, in one statement.

    ``update`` is an outside write (``runs.outside_write``, ``leases.RELEASE_RUNS``): this is
    PostgreSQL's ``Session.wake``.
    """
    changed = update.returning(runs.c.run_id).cte("changed")
    return sa.select(changed.c.run_id, notify("runnable", changed.c.run_id))


_reopened = REOPEN_FAILED_RUN.cte("reopened")
_resumed = sa.insert(events).from_select(
    ["run_id", "seq", "type", "payload", "created_at"],
    sa.select(
        _reopened.c.run_id,
        _reopened.c.last_seq,
        sa.literal(EventType.WORKFLOW_RESUMED.value, sa.String),
        _p("b_payload", sa.Text),
        _p("b_now", sa.Float),
    ),
)

REOPEN_ONE_TRIP = sa.select(
    *_reopened.c, notify("runnable", _reopened.c.run_id).label("notified")
).add_cte(_resumed.cte("resumed"))
"""``runs.REOPEN_FAILED_RUN``, its WORKFLOW_RESUMED event (``b_payload``, JSON text) at
the run's new last seq, and a wake-up for workers; the run's new row comes back, or no row."""


# Oldest first, in ix_runs_created's order: the planner then walks that index and stops after
# ``b_limit`` rows, also in a generic plan. Without an order it picks a sequential scan, which
# stops early only while the runs to delete sit at the front of the table. Candidates are locked
# with SKIP LOCKED: a run another statement is changing right now (a resume reopening it) is
# left for the next call instead of waited on, and a row that changed since the statement's
# snapshot is checked again, so it goes only if it still qualifies.
_candidates = ENDED_RUNS.order_by(runs.c.created_at).with_for_update(skip_locked=True)
_pruned = (
    sa.delete(runs)
    .where(runs.c.run_id.in_(_candidates.scalar_subquery()))
    .returning(runs.c.run_id)
    .cte("pruned")
)

# Every CTE sees the rows as they were before the statement: the stream runs' rows still name
# their pruned driving runs while their subscriptions, signals and deliveries are found.
_pruned_streams = stream_deletes(stream_runs.c.run_id.in_(sa.select(_pruned.c.run_id)))

PRUNE_ONE_TRIP = sa.select(_pruned.c.run_id).add_cte(
    *(
        sa.delete(table)
        .where(table.c.run_id.in_(sa.select(_pruned.c.run_id)))
        .cte(f"pruned_{table.name}")
        for table in RUN_OWNED_TABLES
    ),
    *(
        delete.cte(f"pruned_{table.name}")
        for table, delete in zip(STREAM_ROW_TABLES, _pruned_streams, strict=True)
    ),
)
"""``retention.ENDED_RUNS`` deleted with their rows in ``retention.RUN_OWNED_TABLES`` and the
stream runs they drive (``stream_rows.stream_deletes``), in one statement (``b_ended_before``,
``b_limit``); the ids of the deleted runs come back."""


@functools.cache
def take_due_one_trip(by_names: bool) -> sa.Select[Any]:
    """``take_due_runs`` in one statement: ``leases.take_due_statements`` run as one.

    The candidates (``leases.runnable_runs``) are locked with ``FOR UPDATE SKIP LOCKED``,
    so concurrent takers split the due runs between them without waiting on each other, and a
    run another taker changed since this statement's snapshot is checked again (it is no longer
    due: it is skipped). ``(run_id, wake_at)`` comes back for each run taken, the ``wake_at``
    it had (``_decoding.taken_ids`` orders them).
    """
    picked = runnable_runs(runs.c.run_id, runs.c.wake_at, by_names=by_names, skip_locked=True).cte(
        "picked"
    )
    taken = (
        sa.update(runs)
        .where(runs.c.run_id == picked.c.run_id)
        .values(wake_at=_p("b_until", sa.Float))
        .returning(runs.c.run_id, picked.c.wake_at)
        .cte("taken")
    )
    return sa.select(taken.c.run_id, taken.c.wake_at)


@functools.cache
def claim_one_trip(
    by_names: bool,
    by_ids: bool,
    due_only: bool = True,
    suspects: bool | None = None,
    by_queues: bool = False,
) -> sa.Update:
    """Lease up to ``b_limit`` runnable runs in one statement, returning their rows.

    Each row comes back with one more column, ``previous_owner``: the owner of the lapsed
    lease the claim took over (NULL when the lease was free). Candidates are locked with
    ``FOR UPDATE SKIP LOCKED``, so concurrent claimers split the runs; ``UPDATE ... FROM``
    lets RETURNING name a value of the row as it was (SQLite's RETURNING sees only the updated
    table: there a claim is the two statements of ``Session.claim``).

    Args:
        by_names: only runs of the workflows in ``b_names``.
        by_ids: only the runs in ``b_ids``.
        due_only: only runs whose ``wake_at`` has come (see ``Storage.claim_runs``).
        suspects: only suspects, none of them, or either (see ``leases.runnable_runs``).
        by_queues: only runs of the queues in ``b_queues``.
    """
    candidates = runnable_runs(
        runs.c.run_id,
        runs.c.lease_owner.label("previous_owner"),
        by_names=by_names,
        by_queues=by_queues,
        by_ids=by_ids,
        skip_locked=True,
        due_only=due_only,
        suspects=suspects,
    ).subquery("candidates")
    return (
        sa.update(runs)
        .where(runs.c.run_id == candidates.c.run_id)
        .values(**claim_values())
        .returning(*runs.c, candidates.c.previous_owner)
    )
