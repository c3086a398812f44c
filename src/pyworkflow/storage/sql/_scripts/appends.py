"""The script of an append: one turn of a run, its events and its row's new state, atomically."""

from __future__ import annotations

from pyworkflow.storage.records import AppendResult, AppendWrite
from pyworkflow.storage.sql._decoding import RUN_COLUMN, events_from_rows, run_from_row
from pyworkflow.storage.sql._params import append_params, effect_params, plain_append
from pyworkflow.storage.sql._refusals import append_refused, is_own_write
from pyworkflow.storage.sql._session import Session
from pyworkflow.storage.sql._statements.runs import GET_RUN, LOAD_EVENTS, RUN_STATE

__all__ = ["append", "refused"]


async def append(db: Session, write: AppendWrite) -> AppendResult:
    """Apply one turn: advance the run's row, then write its events and what goes with them.

    Raises:
        ConcurrencyConflictError: the seq or the lease is stale; nothing was written.
        RunNotFoundError: no such run.
    """
    params = append_params(write)
    if not plain_append(write):
        params.update(effect_params(write))
    row = await db.advance_run(write, params)
    if row is None:  # a cold path: one more read to say why
        return await refused(db, write)
    return AppendResult(params["b_last_seq"], row[0], bool(row[1]))


async def refused(db: Session, write: AppendWrite) -> AppendResult:
    """Why an append got no row back, raised; or its result, if a lost attempt had committed.

    Only a retried write (``Session.retried``) can find its own first attempt committed; the
    stored run and events prove it or not (``_refusals.is_own_write``).

    Raises:
        ConcurrencyConflictError: the seq or the lease is stale.
        RunNotFoundError: no such run.
    """
    last_seq = write.expected_seq + len(write.events)
    if db.retried:
        current = await db.first(GET_RUN, {"b_run_id": write.run_id})
        if current is not None and current[RUN_COLUMN["last_seq"]] == last_seq:
            run = run_from_row(current)
            after = {"b_run_id": write.run_id, "b_after": write.expected_seq}
            stored = events_from_rows(write.run_id, await db.all(LOAD_EVENTS, after))
            if is_own_write(write, run, stored):
                return AppendResult(last_seq, run.signal_seq, run.cancel_requested)
    raise append_refused(write, await db.first(RUN_STATE, {"b_run_id": write.run_id}))
