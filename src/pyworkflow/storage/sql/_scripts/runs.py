"""The scripts of runs: creating one, reading and listing them, reopening and cancelling one."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pyworkflow.events import RunStatus
from pyworkflow.exceptions import StorageError
from pyworkflow.storage.records import EventRecord, NewRun, RunCursor, RunRecord
from pyworkflow.storage.sql._decoding import events_from_rows, run_from_row
from pyworkflow.storage.sql._params import new_run_values
from pyworkflow.storage.sql._refusals import idempotent_twin, reopen_refused
from pyworkflow.storage.sql._session import Session
from pyworkflow.storage.sql._statements.runs import (
    GET_RUN,
    GET_RUN_BY_KEY,
    LOAD_EVENTS,
    REQUEST_CANCEL,
    RUN_STATE,
    TAG_CELLS,
    count_runs_statement,
    count_workflow_runs_statement,
    count_workflow_statuses_statement,
    list_runs_statement,
)

__all__ = [
    "count_runs",
    "count_workflow_runs",
    "count_workflow_statuses",
    "create_run",
    "get_run",
    "list_runs",
    "load_events",
    "reopen_failed_run",
    "request_cancel",
]

_MANY_CELLS = 32
"""Matching tags cells past which a listing by tag scans once rather than reading each cell."""


async def create_run(db: Session, run: NewRun) -> tuple[RunRecord, bool]:
    """Insert a run and its first events, or return the idempotent twin.

    Raises:
        IdempotencyConflictError: the key belongs to a run of another workflow.
        StorageError: the run id is taken.
    """
    record, values = new_run_values(run)
    if await db.insert_run(run, record, values):
        return record, True
    # Nothing was written: the idempotency key or the run id is taken, or (on a retry) this
    # very run was created by the attempt that lost its connection.
    if run.idempotency_key is not None:
        row = await db.first(GET_RUN_BY_KEY, {"b_key": run.idempotency_key})
        if row is not None and not (db.retried and row[0] == run.run_id):
            return idempotent_twin(run, row), False
    if db.retried and await db.first(RUN_STATE, {"b_run_id": run.run_id}) is not None:
        return record, True
    raise StorageError(f"a run with id {run.run_id!r} already exists")


async def get_run(db: Session, run_id: str) -> RunRecord | None:
    """The run, or None."""
    row = await db.first(GET_RUN, {"b_run_id": run_id})
    return None if row is None else run_from_row(row)


async def list_runs(
    db: Session,
    *,
    statuses: Collection[RunStatus] | None,
    workflow_name: str | None,
    limit: int,
    before: RunCursor | None,
    parent_run_id: str | None,
    schedule_id: str | None = None,
    run_id_prefix: str | None = None,
    tags: Collection[str] | None = None,
) -> list[RunRecord]:
    """Runs newest first (``created_at``, then ``run_id``, descending), keyset-paged.

    With ``tags``: the distinct tags cells that hold every tag are found first (``TAG_CELLS``,
    a few index seeks: runs take their workflow's tags, so cells are few), then each cell's
    newest runs through ``ix_runs_tags``, merged; a rare tag reads only its own runs. Past
    ``_MANY_CELLS`` matching cells, one scan filters the cells instead.
    """
    if limit <= 0 or (statuses is not None and not statuses):
        return []

    def statement(**by_tags: Any) -> Any:
        return list_runs_statement(
            statuses=statuses,
            workflow_name=workflow_name,
            limit=limit,
            before=before,
            parent_run_id=parent_run_id,
            schedule_id=schedule_id,
            run_id_prefix=run_id_prefix,
            **by_tags,
        )

    if not tags:
        return [run_from_row(row) for row in await db.query(statement())]
    wanted = [f",{tag}," for tag in tags]
    cells = [
        cell
        for (cell,) in await db.query(TAG_CELLS)
        if isinstance(cell, str) and all(tag in cell for tag in wanted)
    ]
    if len(cells) > _MANY_CELLS:
        return [run_from_row(row) for row in await db.query(statement(tags=tags))]
    rows = [row for cell in cells for row in await db.query(statement(tags_cell=cell))]
    found = [run_from_row(row) for row in rows]
    found.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
    return found[:limit]


async def count_runs(
    db: Session, workflow_name: str | None, since: float | None
) -> dict[RunStatus, int]:
    """Runs per status, of one workflow or all, created since ``since``.

    A status this version does not know (a damaged cell) is left out rather than failing the
    count: listings show such a run with its damage.
    """
    known = {s.value: s for s in RunStatus}
    rows = await db.query(count_runs_statement(workflow_name, since))
    return {known[status]: int(count) for status, count in rows if status in known}


async def count_workflow_runs(db: Session, since: float | None) -> dict[str, int]:
    """Runs per workflow, created since ``since``."""
    rows = await db.query(count_workflow_runs_statement(since))
    return {str(workflow): int(count) for workflow, count in rows}


async def count_workflow_statuses(
    db: Session, since: float | None
) -> dict[str, dict[RunStatus, int]]:
    """Runs per workflow and status, created since ``since`` (unknown statuses left out)."""
    known = {s.value: s for s in RunStatus}
    counts: dict[str, dict[RunStatus, int]] = {}
    for workflow, status, count in await db.query(count_workflow_statuses_statement(since)):
        if status in known:
            counts.setdefault(str(workflow), {})[known[status]] = int(count)
    return counts


async def load_events(db: Session, run_id: str, after_seq: int) -> list[EventRecord]:
    """Events of a run with ``seq > after_seq``, in seq order."""
    rows = await db.all(LOAD_EVENTS, {"b_run_id": run_id, "b_after": after_seq})
    return events_from_rows(run_id, rows)


async def reopen_failed_run(
    db: Session, run_id: str, *, now: float, payload: dict[str, Any]
) -> RunRecord:
    """Append WORKFLOW_RESUMED to a failed run and make it pending and due.

    Raises:
        RunNotFoundError: no such run.
        InvalidRunStateError: the run has not failed.
    """
    row = await db.reopen_run(run_id, now, payload)
    if row is None:
        raise reopen_refused(run_id, await db.first(RUN_STATE, {"b_run_id": run_id}))
    return run_from_row(row)


async def request_cancel(db: Session, run_id: str, *, now: float, reason: str | None) -> bool:
    """Record a cancel request, bump ``signal_seq`` and make the run due.

    The lease, if any, stays with its holder: it sees the request in the AppendResult of its
    next append, or leaves the run due when it releases it.

    Returns:
        True, or False if there is no such run or it has ended.
    """
    params = {"b_run_id": run_id, "b_now": now, "b_reason": reason}
    return bool(await db.wake(REQUEST_CANCEL, params))
