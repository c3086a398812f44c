"""The storage operations of SQL backends: transaction functions and reads, dialect-neutral.

Each function binds values to a statement of ``statements.py``, runs it and turns rows into the
records of ``protocol.py``; JSON values are encoded and decoded here. These are plain synchronous
functions over a :class:`sqlalchemy.Connection`. Functions whose names end in ``_txn`` write, and
run inside a transaction the caller opened and commits (SQLite's database thread, or PostgreSQL's
``AsyncConnection.run_sync``); they never begin, commit or roll back themselves, so a caller can
group several of them in one transaction. The read functions need no transaction. Semantics are
the ones in ``protocol.py``'s docstrings.

Invariant kept by every write here: a terminal run has ``wake_at`` NULL and no lease, so the
queries for runnable runs (``statements.py``) walk the ``wake_at`` index in order and stop after
``limit`` rows.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from typing import Any, NoReturn

import sqlalchemy as sa

from pyworkflow._engine.events import EventType, RunStatus
from pyworkflow.exceptions import (
    ConcurrencyConflictError,
    IdempotencyConflictError,
    InvalidRunStateError,
    RunNotFoundError,
)
from pyworkflow.storage.protocol import (
    AppendResult,
    AppendWrite,
    EventRecord,
    NewRun,
    RunCursor,
    RunRecord,
)
from pyworkflow.storage.statements import (
    APPEND,
    GET_RUN,
    GET_RUN_BY_KEY,
    INSERT_EVENT,
    INSERT_RUN,
    LOAD_EVENTS,
    RELEASE_RUNS,
    RENEW_LEASES,
    REOPEN_FAILED_RUN,
    REQUEST_CANCEL,
    RUN_STATE,
    claim_runs_statement,
    list_runs_statement,
    next_wake_at_statements,
)

__all__ = [
    "append_txn",
    "claim_runs_txn",
    "create_run_txn",
    "get_run",
    "list_runs",
    "load_events",
    "next_wake_at",
    "release_runs_txn",
    "renew_leases_txn",
    "reopen_failed_run_txn",
    "request_cancel_txn",
]

_dumps = json.JSONEncoder(separators=(",", ":")).encode
_loads = json.loads

_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunRecord))


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _event_row(run_id: str, seq: int, type_: EventType, payload: Any, now: float) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "seq": seq,
        "type": type_.value,
        "payload": _dumps(payload),
        "created_at": now,
    }


def _run_from_row(row: sa.Row[Any]) -> RunRecord:
    return RunRecord(
        run_id=row.run_id,
        workflow_name=row.workflow_name,
        status=RunStatus(row.status),
        args=_loads(row.args),
        result=None if row.result is None else _loads(row.result),
        error=None if row.error is None else _loads(row.error),
        idempotency_key=row.idempotency_key,
        parent_run_id=row.parent_run_id,
        # float(): SQLite's RETURNING hands back REAL values before column affinity, so an
        # integral time would come back as an int.
        created_at=float(row.created_at),
        updated_at=float(row.updated_at),
        completed_at=_float_or_none(row.completed_at),
        wake_at=_float_or_none(row.wake_at),
        lease_owner=row.lease_owner,
        lease_expires_at=_float_or_none(row.lease_expires_at),
        recovery_count=row.recovery_count,
        last_seq=row.last_seq,
        signal_seq=row.signal_seq,
        cancel_requested=bool(row.cancel_requested),
        cancel_reason=row.cancel_reason,
    )


# --- writes (inside the caller's transaction) ---------------------------------------------------


def create_run_txn(conn: sa.Connection, run: NewRun) -> tuple[RunRecord, bool]:
    """Insert a run and its WORKFLOW_STARTED event (seq 1), or return the idempotent twin.

    Raises:
        IdempotencyConflictError: the key belongs to a run of another workflow.
    """
    if run.idempotency_key is not None:
        row = conn.execute(GET_RUN_BY_KEY, {"b_key": run.idempotency_key}).first()
        if row is not None:
            if row.workflow_name != run.workflow_name:
                raise IdempotencyConflictError(
                    run.idempotency_key, row.workflow_name, run.workflow_name
                )
            return _run_from_row(row), False
    record = run.initial_record()
    values = {name: getattr(record, name) for name in _RUN_FIELDS}
    values["status"] = record.status.value
    values["args"] = _dumps(run.args)
    INSERT_RUN.many(conn, [values])
    INSERT_EVENT.many(
        conn,
        [_event_row(run.run_id, seq, t, p, run.now) for seq, t, p in run.initial_events()],
    )
    return record, True


def append_txn(conn: sa.Connection, write: AppendWrite) -> AppendResult:
    """Apply one turn: advance the run's row, then insert its events.

    Raises:
        ConcurrencyConflictError: the seq or the lease is stale; nothing was written.
        RunNotFoundError: no such run.
    """
    terminal = write.status is not None and write.status.is_terminal
    releasing = terminal or write.lease_expires_at is None
    last_seq = write.expected_seq + len(write.events)
    result_json = None
    if write.result is not None or write.status is RunStatus.COMPLETED:
        result_json = _dumps(write.result)
    row = APPEND.first(
        conn,
        {
            "b_run_id": write.run_id,
            "b_expected": write.expected_seq,
            "b_owner": write.owner,
            "b_last_seq": last_seq,
            "b_status": None if write.status is None else write.status.value,
            "b_now": write.now,
            "b_check_signals": releasing and not terminal,
            "b_signals_seen": write.signals_seen,
            # Terminal runs leave the runnable index: wake_at NULL, lease released.
            "b_wake_at": None if terminal else write.wake_at,
            "b_new_owner": None if releasing else write.owner,
            "b_lease_expires_at": None if releasing else write.lease_expires_at,
            "b_result": result_json,
            "b_error": None if write.error is None else _dumps(write.error),
            "b_completed_at": write.now if terminal else None,
            "b_progressed": write.progressed,
        },
    )
    if row is None:
        _raise_append_conflict(conn, write)
    if write.events:
        first = write.expected_seq + 1
        rows = [
            _event_row(write.run_id, seq, event.type, event.payload, write.now)
            for seq, event in enumerate(write.events, first)
        ]
        INSERT_EVENT.many(conn, rows)
    signal_seq, cancel_requested = row
    return AppendResult(last_seq, signal_seq, bool(cancel_requested))


def _raise_append_conflict(conn: sa.Connection, write: AppendWrite) -> NoReturn:
    """Say why an append was refused (a cold path: one extra read)."""
    row = conn.execute(RUN_STATE, {"b_run_id": write.run_id}).first()
    if row is None:
        raise RunNotFoundError(write.run_id)
    if row.last_seq != write.expected_seq:
        reason = f"the run's last seq is {row.last_seq} (stale seq)"
    elif row.lease_owner is None:
        reason = f"{write.owner!r} holds no lease on it (run is {row.status})"
    else:
        reason = f"its lease is held by {row.lease_owner!r}, not {write.owner!r} (stale lease)"
    raise ConcurrencyConflictError(write.run_id, write.expected_seq, reason)


def claim_runs_txn(
    conn: sa.Connection,
    *,
    owner: str,
    now: float,
    lease_expires_at: float,
    limit: int,
    workflow_names: Collection[str] | None = None,
    run_ids: Collection[str] | None = None,
    skip_locked: bool = False,
) -> list[RunRecord]:
    """Lease up to ``limit`` runnable runs, earliest ``wake_at`` first.

    Args:
        conn: a connection inside a write transaction.
        owner: the new lease owner.
        now: the executor's clock; leases that expired by then are taken over (one recovery).
        lease_expires_at: the new lease's expiry.
        limit: at most this many runs.
        workflow_names: only runs of these workflows.
        run_ids: only these runs.
        skip_locked: lock candidates with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL, where
            writers are concurrent; SQLite serialises writers and ignores it).
    """
    if limit <= 0 or (run_ids is not None and not run_ids):
        return []
    if workflow_names is not None and not workflow_names:
        return []
    params: dict[str, Any] = {
        "b_now": now,
        "b_limit": limit,
        "b_owner": owner,
        "b_lease_expires_at": lease_expires_at,
    }
    if workflow_names is not None:
        params["b_names"] = list(workflow_names)
    if run_ids is not None:
        params["b_ids"] = list(run_ids)
    stmt = claim_runs_statement(workflow_names is not None, run_ids is not None, skip_locked)
    records = [_run_from_row(row) for row in conn.execute(stmt, params)]
    # RETURNING promises no order.
    records.sort(key=lambda r: (r.wake_at or 0.0, r.run_id))
    return records


def renew_leases_txn(
    conn: sa.Connection,
    *,
    owner: str,
    run_ids: Collection[str],
    now: float,
    lease_expires_at: float,
) -> set[str]:
    """Extend the leases ``owner`` still holds; returns their run ids."""
    if not run_ids:
        return set()
    params = {
        "b_ids": list(run_ids),
        "b_owner": owner,
        "b_now": now,
        "b_lease_expires_at": lease_expires_at,
    }
    return {row.run_id for row in conn.execute(RENEW_LEASES, params)}


def release_runs_txn(
    conn: sa.Connection, *, owner: str, run_ids: Collection[str], now: float
) -> None:
    """Drop ``owner``'s leases on these runs and make them due at once."""
    if run_ids:
        conn.execute(RELEASE_RUNS, {"b_ids": list(run_ids), "b_owner": owner, "b_now": now})


def request_cancel_txn(conn: sa.Connection, run_id: str, *, now: float, reason: str | None) -> bool:
    """Record a cancel request, bump ``signal_seq`` and make the run due.

    The lease, if any, stays with its holder: it sees the request in the AppendResult of its
    next append, or leaves the run due when it releases it.

    Returns:
        True, or False if there is no such run or it has ended.
    """
    done = conn.execute(REQUEST_CANCEL, {"b_run_id": run_id, "b_now": now, "b_reason": reason})
    return bool(done.rowcount)


def reopen_failed_run_txn(
    conn: sa.Connection, run_id: str, *, now: float, payload: dict[str, Any]
) -> RunRecord:
    """Append WORKFLOW_RESUMED to a failed run and make it pending and due.

    Raises:
        RunNotFoundError: no such run.
        InvalidRunStateError: the run has not failed.
    """
    row = conn.execute(REOPEN_FAILED_RUN, {"b_run_id": run_id, "b_now": now}).first()
    if row is None:
        current = conn.execute(RUN_STATE, {"b_run_id": run_id}).first()
        if current is None:
            raise RunNotFoundError(run_id)
        raise InvalidRunStateError(run_id, current.status, "only a failed run can be resumed")
    resumed = _event_row(run_id, row.last_seq, EventType.WORKFLOW_RESUMED, payload, now)
    INSERT_EVENT.many(conn, [resumed])
    return _run_from_row(row)


# --- reads ---------------------------------------------------------------------------------------


def get_run(conn: sa.Connection, run_id: str) -> RunRecord | None:
    """The run, or None."""
    row = GET_RUN.first_named(conn, {"b_run_id": run_id})
    return None if row is None else _run_from_row(row)


def list_runs(
    conn: sa.Connection,
    *,
    statuses: Collection[RunStatus] | None = None,
    workflow_name: str | None = None,
    limit: int = 100,
    before: RunCursor | None = None,
) -> list[RunRecord]:
    """Runs newest first (``created_at``, then ``run_id``, descending), keyset-paged."""
    if limit <= 0 or (statuses is not None and not statuses):
        return []
    stmt = list_runs_statement(
        statuses=statuses, workflow_name=workflow_name, limit=limit, before=before
    )
    return [_run_from_row(row) for row in conn.execute(stmt)]


def load_events(conn: sa.Connection, run_id: str, after_seq: int = 0) -> list[EventRecord]:
    """Events of a run with ``seq > after_seq``, in seq order."""
    rows = LOAD_EVENTS.all(conn, {"b_run_id": run_id, "b_after": after_seq})
    types = _EVENT_TYPES
    # Hot on every resume (B3): plain tuples, and the enum looked up in a dict.
    return [
        EventRecord(run_id, seq, types[type_], _loads(payload), float(created_at))
        for seq, type_, payload, created_at in rows
    ]


_EVENT_TYPES = {t.value: t for t in EventType}


def next_wake_at(
    conn: sa.Connection, *, workflow_names: Collection[str] | None = None
) -> float | None:
    """The earliest time a live run becomes claimable, or None.

    That is ``wake_at`` for a run nobody holds; for a leased run (the call takes no ``now`` to
    tell whether its lease lapsed) the later of ``wake_at`` and the lease's expiry, the moment a
    crashed holder's run can be recovered.
    """
    if workflow_names is not None and not workflow_names:
        return None
    free, leased = next_wake_at_statements(workflow_names is not None)
    params: dict[str, Any] = {} if workflow_names is None else {"b_names": list(workflow_names)}
    first_free = conn.execute(free, params).scalar()
    params["b_bound"] = float("inf") if first_free is None else first_free
    first_leased = conn.execute(leased, params).scalar()
    times = [float(t) for t in (first_free, first_leased) if t is not None]
    return min(times, default=None)
