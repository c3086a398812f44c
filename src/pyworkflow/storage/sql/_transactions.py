"""The storage operations of SQL backends: transaction functions and reads, dialect-neutral.

Each function binds values to a statement of ``statements.py``, runs it and turns rows into the
records of ``records.py``; JSON values are encoded and decoded here. These are plain synchronous
functions over a :class:`sqlalchemy.Connection` (SQLite's database thread runs them; PostgreSQL
runs the same statements through asyncpg, in ``postgres.py``, and shares ``rows.py`` with this
module). Functions whose names end in ``_txn`` write, and run inside a transaction the caller
opened and commits; they never begin, commit or roll back themselves, so a caller can group
several of them in one transaction. The read functions need no transaction. Semantics are
the ones in ``protocol.py``'s docstrings.

Invariant kept by every write here: a terminal run has ``wake_at`` NULL and no lease, so the
queries for runnable runs (``statements.py``) walk the ``wake_at`` index in order and stop after
``limit`` rows.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from pyworkflow.events import EventType, HookStatus, RunStatus
from pyworkflow.exceptions import StorageError
from pyworkflow.storage.records import (
    AppendResult,
    AppendWrite,
    EventRecord,
    HookRecord,
    NewRun,
    RunCursor,
    RunRecord,
)
from pyworkflow.storage.sql._decoding import events_from_rows, hook_from_row, run_from_row
from pyworkflow.storage.sql._prepared import PreparedStatement
from pyworkflow.storage.sql._rows import (
    append_params,
    append_refused,
    appended_event_values,
    claim_params,
    claimed_runs,
    earliest_wake,
    effect_params,
    encode,
    event_values,
    first_event_values,
    hook_not_found,
    hook_refused,
    hook_values,
    idempotent_twin,
    new_run_values,
    plain_append,
    reopen_refused,
    spawned_run_values,
    taken_ids,
)
from pyworkflow.storage.sql._statements import (
    APPEND,
    APPEND_WITH_EFFECTS,
    CANCEL_CHILDREN,
    CLAIM_BY_IDS,
    DELETE_ENDED_RUNS,
    DELETE_RUN_ROWS,
    DELIVER_HOOK,
    EXPIRE_HOOK,
    GET_HOOK,
    GET_HOOK_OF_RUN,
    GET_RUN,
    GET_RUN_BY_KEY,
    HOOK_STATE,
    INSERT_EVENT,
    INSERT_HOOK,
    INSERT_RUN,
    LOAD_EVENTS,
    RELEASE_RUNS,
    RENEW_LEASES,
    REOPEN_FAILED_RUN,
    REQUEST_CANCEL,
    RUN_STATE,
    SIGNAL_RUN,
    claim_candidates_statement,
    list_hooks_statement,
    list_runs_statement,
    next_wake_at_statements,
    take_due_statements,
)

__all__ = [
    "append_txn",
    "claim_runs_txn",
    "create_run_txn",
    "delete_ended_runs_txn",
    "deliver_hook_txn",
    "expire_hook_txn",
    "get_hook",
    "get_run",
    "list_hooks",
    "list_runs",
    "load_events",
    "next_wake_at",
    "release_runs_txn",
    "renew_leases_txn",
    "reopen_failed_run_txn",
    "request_cancel_txn",
    "take_due_runs_txn",
]

# --- writes (inside the caller's transaction) ---------------------------------------------------

# At most this many ids per ``IN (...)`` list: far below SQLite's limit on bound parameters.
_IDS_PER_STATEMENT = 500

# Every run's end runs these (B2 ends 1,000 runs a burst): the fast path, not Connection.execute.
_CANCEL_CHILDREN = PreparedStatement(CANCEL_CHILDREN)
_SIGNAL_RUN = PreparedStatement(SIGNAL_RUN)


def create_run_txn(conn: sa.Connection, run: NewRun) -> tuple[RunRecord, bool]:
    """Insert a run and its WORKFLOW_STARTED event (seq 1), or return the idempotent twin.

    Raises:
        IdempotencyConflictError: the key belongs to a run of another workflow.
    """
    if run.idempotency_key is not None:
        row = conn.execute(GET_RUN_BY_KEY, {"b_key": run.idempotency_key}).first()
        if row is not None:
            return idempotent_twin(run, row), False
    record, values = new_run_values(run)
    INSERT_RUN.many(conn, [values])
    INSERT_EVENT.many(conn, first_event_values(run))
    return record, True


def append_txn(conn: sa.Connection, write: AppendWrite) -> AppendResult:
    """Apply one turn: advance the run's row, then insert its events.

    Raises:
        ConcurrencyConflictError: the seq or the lease is stale; nothing was written.
        RunNotFoundError: no such run.
    """
    params = append_params(write)
    if not plain_append(write):
        return _append_with_effects_txn(conn, write, params)
    row = APPEND.first(conn, params)
    if row is None:  # a cold path: one extra read to say why
        raise append_refused(write, conn.execute(RUN_STATE, {"b_run_id": write.run_id}).first())
    if write.events:
        INSERT_EVENT.many(conn, appended_event_values(write))
    signal_seq, cancel_requested = row
    return AppendResult(params["b_last_seq"], signal_seq, bool(cancel_requested))


def _append_with_effects_txn(
    conn: sa.Connection, write: AppendWrite, params: dict[str, Any]
) -> AppendResult:
    """An append that also writes other rows: its hooks, its new runs, its end's side effects.

    The side effects run before the new runs are inserted, as on PostgreSQL (where one
    statement's parts see the rows as they were before it): ``spawned_run_values`` stores a
    child that this very append's end cancels with the request already made.
    """
    params.update(effect_params(write))
    row = APPEND_WITH_EFFECTS.first(conn, params)
    if row is None:
        raise append_refused(write, conn.execute(RUN_STATE, {"b_run_id": write.run_id}).first())
    if write.events:
        INSERT_EVENT.many(conn, appended_event_values(write))
    signal_seq, cancel_requested, parent_run_id = row
    if params["b_ends"]:
        reason = params["b_cancel_reason"]
        _CANCEL_CHILDREN.first(
            conn, {"b_run_id": write.run_id, "b_now": write.now, "b_cancel_reason": reason}
        )
        if params["b_signal_parent"] and parent_run_id is not None:
            _SIGNAL_RUN.first(conn, {"b_run_id": parent_run_id, "b_now": write.now})
    if write.hooks:
        INSERT_HOOK.many(conn, hook_values(write))
    if write.new_runs:
        spawned, first_events = spawned_run_values(write)
        INSERT_RUN.many(conn, spawned)
        INSERT_EVENT.many(conn, first_events)
    return AppendResult(params["b_last_seq"], signal_seq, bool(cancel_requested))


def claim_runs_txn(
    conn: sa.Connection,
    *,
    owner: str,
    now: float,
    lease_expires_at: float,
    limit: int,
    workflow_names: Collection[str] | None = None,
    run_ids: Collection[str] | None = None,
    due_only: bool = True,
    suspects: bool | None = None,
) -> list[RunRecord]:
    """Lease up to ``limit`` runnable runs, earliest ``wake_at`` first.

    Two statements in the caller's write transaction, which SQLite holds alone (so nothing
    comes between them and there are no row locks to skip): pick the candidates with their
    lease owners, then lease them. (SQLite's RETURNING cannot name the owner the claim
    replaced, which a take-over logs: PostgreSQL does it in one statement.)

    Args:
        conn: a connection inside a write transaction.
        owner: the new lease owner.
        now: the executor's clock; leases that expired by then are taken over (one recovery).
        lease_expires_at: the new lease's expiry.
        limit: at most this many runs.
        workflow_names: only runs of these workflows.
        run_ids: only these runs.
        due_only: only runs whose ``wake_at`` has come (see ``Storage.claim_runs``).
        suspects: only suspects, none of them, or either (see ``Storage.claim_runs``).
    """
    params = claim_params(
        owner=owner,
        now=now,
        lease_expires_at=lease_expires_at,
        limit=limit,
        workflow_names=workflow_names,
        run_ids=run_ids,
    )
    if params is None:
        return []
    candidates = claim_candidates_statement(
        "b_names" in params, "b_ids" in params, due_only, suspects
    )
    # Not dict(result): a result has keys(), so dict() would read it as a mapping.
    owners: dict[str, str | None] = {row[0]: row[1] for row in conn.execute(candidates, params)}
    if not owners:
        return []
    ids = list(owners)
    rows: list[sa.Row[Any]] = []
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        chunk = {**params, "b_ids": ids[start : start + _IDS_PER_STATEMENT]}
        rows.extend(conn.execute(CLAIM_BY_IDS, chunk))
    return claimed_runs(rows, owners)


def take_due_runs_txn(
    conn: sa.Connection,
    *,
    now: float,
    until: float,
    limit: int,
    workflow_names: Collection[str] | None = None,
) -> list[str]:
    """Set ``wake_at = until`` on up to ``limit`` runnable runs; their ids, earliest first.

    Two statements in the caller's write transaction, which SQLite holds alone.
    """
    if limit <= 0 or (workflow_names is not None and not workflow_names):
        return []
    due, take = take_due_statements(workflow_names is not None)
    params: dict[str, Any] = {"b_now": now, "b_limit": limit}
    if workflow_names is not None:
        params["b_names"] = list(workflow_names)
    taken = taken_ids(conn.execute(due, params))
    for start in range(0, len(taken), _IDS_PER_STATEMENT):
        conn.execute(take, {"b_ids": taken[start : start + _IDS_PER_STATEMENT], "b_until": until})
    return taken


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
        raise reopen_refused(run_id, conn.execute(RUN_STATE, {"b_run_id": run_id}).first())
    record = run_from_row(row)
    resumed = [(EventType.WORKFLOW_RESUMED, payload)]
    INSERT_EVENT.many(conn, event_values(run_id, record.last_seq, resumed, now))
    return record


def delete_ended_runs_txn(conn: sa.Connection, *, ended_before: float, limit: int) -> list[str]:
    """Delete up to ``limit`` ended runs with ``completed_at < ended_before``, and their rows.

    Returns:
        The ids of the deleted runs.
    """
    if limit <= 0:
        return []
    params = {"b_ended_before": ended_before, "b_limit": limit}
    gone = [row.run_id for row in conn.execute(DELETE_ENDED_RUNS, params)]
    for start in range(0, len(gone), _IDS_PER_STATEMENT):
        chunk = gone[start : start + _IDS_PER_STATEMENT]
        for statement in DELETE_RUN_ROWS:
            conn.execute(statement, {"b_ids": chunk})
    return gone


def deliver_hook_txn(
    conn: sa.Connection, token_hash: str, payload: Any, *, now: float
) -> HookRecord:
    """Store a waiting hook's payload and signal its run; see ``Storage.deliver_hook``.

    Raises (having written nothing):
        HookNotFoundError, HookAlreadyReceivedError, HookExpiredError: see ``rows.hook_refused``.
    """
    params = {"b_token_hash": token_hash, "b_payload": encode(payload), "b_now": now}
    row = conn.execute(DELIVER_HOOK, params).first()
    if row is None:  # a cold path: read why
        state = conn.execute(HOOK_STATE, {"b_token_hash": token_hash}).first()
        # Within one write transaction nothing changed between the two: always an error.
        raise hook_refused(token_hash, now, state) or StorageError(
            f"hook {token_hash[:8]!r}... was refused but looks deliverable"
        )
    hook = hook_from_row(row)
    _SIGNAL_RUN.first(conn, {"b_run_id": hook.run_id, "b_now": now})
    return hook


def expire_hook_txn(conn: sa.Connection, run_id: str, hook_id: str) -> HookRecord:
    """Turn a waiting hook expired; returns it as it stands (a delivery may have won).

    Raises:
        HookNotFoundError: the run has no such hook.
    """
    params = {"b_run_id": run_id, "b_hook_id": hook_id}
    row = conn.execute(EXPIRE_HOOK, params).first()
    if row is None:
        row = conn.execute(GET_HOOK_OF_RUN, params).first()
        if row is None:
            raise hook_not_found(run_id, hook_id)
    return hook_from_row(row)


# --- reads ---------------------------------------------------------------------------------------


def get_run(conn: sa.Connection, run_id: str) -> RunRecord | None:
    """The run, or None."""
    row = GET_RUN.first_named(conn, {"b_run_id": run_id})
    return None if row is None else run_from_row(row)


def list_runs(
    conn: sa.Connection,
    *,
    statuses: Collection[RunStatus] | None = None,
    workflow_name: str | None = None,
    limit: int = 100,
    before: RunCursor | None = None,
    parent_run_id: str | None = None,
) -> list[RunRecord]:
    """Runs newest first (``created_at``, then ``run_id``, descending), keyset-paged."""
    if limit <= 0 or (statuses is not None and not statuses):
        return []
    stmt = list_runs_statement(
        statuses=statuses,
        workflow_name=workflow_name,
        limit=limit,
        before=before,
        parent_run_id=parent_run_id,
    )
    return [run_from_row(row) for row in conn.execute(stmt).all()]


def get_hook(conn: sa.Connection, token_hash: str) -> HookRecord | None:
    """The hook whose token hashes to ``token_hash``, or None."""
    row = conn.execute(GET_HOOK, {"b_token_hash": token_hash}).first()
    return None if row is None else hook_from_row(row)


def list_hooks(
    conn: sa.Connection,
    *,
    run_id: str | None = None,
    status: HookStatus | None = None,
    limit: int = 100,
) -> list[HookRecord]:
    """Hooks newest first, of one run and/or in one status."""
    if limit <= 0:
        return []
    stmt = list_hooks_statement(run_id=run_id, status=status, limit=limit)
    return [hook_from_row(row) for row in conn.execute(stmt).all()]


def load_events(conn: sa.Connection, run_id: str, after_seq: int = 0) -> list[EventRecord]:
    """Events of a run with ``seq > after_seq``, in seq order."""
    return events_from_rows(
        run_id, LOAD_EVENTS.all(conn, {"b_run_id": run_id, "b_after": after_seq})
    )


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
    return earliest_wake(first_free, first_leased)
