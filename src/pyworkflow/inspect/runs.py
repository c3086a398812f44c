"""Runs as a reader sees them: one run's view, and listings with filters and keyset paging.

A view is built from the stored row alone, decoding nothing, so that listing runs never runs
a stored pickle and one bad run never hides the others: a row storage read back damaged, or a
stored time no ``datetime`` can hold, is listed all the same with its ``damage`` saying what.

Listings are newest first and paged by keyset: a page's ``next_before`` is the id of its last
run, passed back as ``before`` for the next (older) page, so a page stays correct while new
runs arrive. Storage filters by status, workflow and id prefix; ``until`` becomes the keyset
position the scan starts from and ``since`` ends it (see ``RunFilter``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pyworkflow._run_views import damage_of
from pyworkflow.events import TERMINAL_STATUSES, RunStatus
from pyworkflow.exceptions import InputError, RunNotFoundError
from pyworkflow.inspect.values import iso
from pyworkflow.queues import DEFAULT_QUEUE
from pyworkflow.storage import RunCursor, RunRecord, Storage

__all__ = [
    "RunFilter",
    "RunPage",
    "RunView",
    "count_ended_runs",
    "get_run",
    "iter_runs",
    "list_runs",
]

# Rows read per query while skipping runs newer than ``until``, or walking every match.
_SCAN_BATCH = 500


@dataclass(frozen=True, slots=True)
class RunView:
    """One run as listings show it: its stored row, nothing decoded.

    Times are epoch seconds (UTC); ``to_json`` gives them as ISO strings.

    Attributes:
        run_id: the run's id.
        workflow: its workflow's name.
        status: pending, running, suspended, completed, failed, cancelled, continued_as_new.
        created_at, updated_at: when it was created and last changed.
        completed_at: when it ended, or None.
        wake_at: when a suspended run wakes on a timer; None for a run in any other status.
        idempotency_key, parent_run_id, recovery_count: as stored.
        cancel_requested, cancel_reason: a cancellation asked for (by ``cancel_workflow``).
        parent_close_policy: for a child, ``"cancel"`` or ``"abandon"``.
        continued_from, continued_to: its neighbours in a continue-as-new chain.
        error: ``{"type", "message", "traceback"}`` once failed, else None.
        queue: the queue whose workers execute it (``pyworkflow.queues``).
        waits_for_worker: True when, as the view was made, the run was due and nobody held
            it (no lease, or a lapsed one): it waits for a worker serving ``queue``, and if
            it stays so, none is running (or all are busy).
        schedule_id: the schedule that started it, or None.
        schedule_slot_at: the slot of that schedule it was started for, or None.
        damage: None for a sound row; else what of it cannot be read or shown, naming table,
            run and column (``"corrupt runs.args of run 'run_...': not valid JSON ..."``).
    """

    run_id: str
    workflow: str
    status: RunStatus
    created_at: float
    updated_at: float
    completed_at: float | None
    wake_at: float | None
    idempotency_key: str | None
    parent_run_id: str | None
    recovery_count: int
    cancel_requested: bool
    cancel_reason: str | None
    parent_close_policy: str | None
    continued_from: str | None
    continued_to: str | None
    error: dict[str, Any] | None
    damage: str | None
    queue: str = DEFAULT_QUEUE
    waits_for_worker: bool = False
    schedule_id: str | None = None
    schedule_slot_at: float | None = None
    tags: tuple[str, ...] = ()

    @classmethod
    def from_record(cls, record: RunRecord, now: float | None = None) -> RunView:
        """The view of a stored row; never raises for what is stored.

        ``now`` (default: the wall clock) tells whether the run is due and waits for a worker.
        """
        suspended = record.status is RunStatus.SUSPENDED
        now = time.time() if now is None else now
        lease_free = record.lease_owner is None or (record.lease_expires_at or 0.0) <= now
        due = record.wake_at is not None and record.wake_at <= now
        return cls(
            run_id=record.run_id,
            workflow=record.workflow_name,
            status=record.status,
            created_at=record.created_at,
            updated_at=record.updated_at,
            completed_at=record.completed_at,
            wake_at=record.wake_at if suspended else None,
            idempotency_key=record.idempotency_key,
            parent_run_id=record.parent_run_id,
            recovery_count=record.recovery_count,
            cancel_requested=record.cancel_requested,
            cancel_reason=record.cancel_reason,
            parent_close_policy=record.parent_close_policy,
            continued_from=record.continued_from,
            continued_to=record.continued_to,
            error=record.error,
            damage=damage_of(record),
            queue=record.queue,
            waits_for_worker=not record.status.is_terminal and due and lease_free,
            schedule_id=record.schedule_id,
            schedule_slot_at=record.schedule_slot_at,
            tags=record.tags,
        )

    @property
    def took(self) -> float | None:
        """Seconds from creation to its end; None while it has not ended."""
        return None if self.completed_at is None else self.completed_at - self.created_at

    def to_json(self) -> dict[str, Any]:
        """The keys every run has in JSON.

        ``run_id``, ``workflow``, ``status``, ``created_at``, ``updated_at``, ``completed_at``,
        ``wake_at``, ``idempotency_key``, ``parent_run_id``, ``recovery_count``,
        ``cancel_requested``, ``parent_close_policy``, ``continued_from``, ``continued_to``,
        ``queue``, ``waits_for_worker``, ``schedule_id``, ``schedule_slot_at``, ``tags``,
        ``damage``; times as ISO 8601 strings in UTC, absent values null.
        """
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status.value,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "completed_at": iso(self.completed_at),
            "wake_at": iso(self.wake_at),
            "idempotency_key": self.idempotency_key,
            "parent_run_id": self.parent_run_id,
            "recovery_count": self.recovery_count,
            "cancel_requested": self.cancel_requested,
            "parent_close_policy": self.parent_close_policy,
            "continued_from": self.continued_from,
            "continued_to": self.continued_to,
            "queue": self.queue,
            "waits_for_worker": self.waits_for_worker,
            "schedule_id": self.schedule_id,
            "schedule_slot_at": iso(self.schedule_slot_at),
            "tags": list(self.tags),
            "damage": self.damage,
        }


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs a listing shows; every field left at its default lets all runs through.

    Example:
        >>> RunFilter(statuses=(RunStatus.FAILED,), workflow="checkout", since=time.time() - 86400)

    Attributes:
        statuses: only runs in one of these (empty: any status).
        workflow: only runs of this workflow.
        since: only runs created at or after this time (epoch seconds).
        until: only runs created before this time (epoch seconds).
        schedule: only runs this schedule started.
        run_id_prefix: only runs whose id starts with this (case-sensitive).
        tags: only runs carrying every one of these tags (``@workflow(tags=...)``).
    """

    statuses: tuple[RunStatus, ...] = ()
    workflow: str | None = None
    since: float | None = None
    until: float | None = None
    schedule: str | None = None
    run_id_prefix: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of a listing, newest first.

    Attributes:
        runs: the runs of this page.
        next_before: the id to pass as ``before`` for the next (older) page; None on the last.
    """

    runs: list[RunView]
    next_before: str | None

    def to_json(self) -> dict[str, Any]:
        """``{"runs": [run, ...], "next_before": RUN_ID or null}`` (a run: ``RunView``)."""
        return {"runs": [r.to_json() for r in self.runs], "next_before": self.next_before}


async def get_run(storage: Storage, run_id: str) -> RunView:
    """The view of one stored run.

    Example:
        >>> (await get_run(storage, run_id)).status
        <RunStatus.SUSPENDED: 'suspended'>

    Raises:
        RunNotFoundError: no such run.
    """
    return RunView.from_record(await stored_run(storage, run_id))


async def stored_run(storage: Storage, run_id: str) -> RunRecord:
    """The stored row of ``run_id``, for the other readers of this package.

    Raises:
        RunNotFoundError: no such run.
    """
    record = await storage.get_run(run_id)
    if record is None:
        raise RunNotFoundError(run_id)
    return record


async def cursor_of(storage: Storage, before: str | None) -> RunCursor | None:
    """The keyset position of the run ``before`` names (None: from the newest).

    Raises:
        RunNotFoundError: ``before`` names no run.
    """
    if before is None:
        return None
    last = await stored_run(storage, before)
    return RunCursor(last.created_at, last.run_id)


async def _page(
    storage: Storage, runs: RunFilter, limit: int, cursor: RunCursor | None
) -> tuple[list[RunRecord], bool]:
    """Up to ``limit`` matching rows after ``cursor``, and whether older ones match too.

    Newest first: ``since`` ends the scan at the first older run; ``until`` starts it there,
    as a keyset position (a run created at ``until`` sorts after ``(until, "")``), so the
    newer runs are never read.
    """
    found: list[RunRecord] = []
    batch = limit + 1
    if runs.until is not None:
        start = RunCursor(runs.until, "")
        if cursor is None or (start.created_at, start.run_id) < (cursor.created_at, cursor.run_id):
            cursor = start
    while True:
        rows = await storage.list_runs(
            statuses=runs.statuses or None,
            workflow_name=runs.workflow,
            limit=batch,
            before=cursor,
            schedule_id=runs.schedule,
            run_id_prefix=runs.run_id_prefix or None,
            tags=runs.tags or None,
        )
        for row in rows:
            if runs.since is not None and row.created_at < runs.since:
                return found, False
            found.append(row)
            if len(found) > limit:
                return found[:limit], True
        if len(rows) < batch:
            return found, False
        cursor = RunCursor(rows[-1].created_at, rows[-1].run_id)


def _checked(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise InputError(f"limit must be at least 1, not {limit!r}")


async def list_runs(
    storage: Storage,
    runs: RunFilter | None = None,
    *,
    limit: int = 50,
    before: str | None = None,
) -> RunPage:
    """One page of the runs ``runs`` lets through, newest first.

    Example:
        >>> page = await list_runs(storage, RunFilter(statuses=(RunStatus.FAILED,)), limit=20)
        >>> older = await list_runs(storage, RunFilter(...), limit=20, before=page.next_before)

    Args:
        storage: an opened storage.
        runs: the filter; None lists every run.
        limit: runs per page.
        before: ``next_before`` of the previous page.

    Raises:
        RunNotFoundError: ``before`` names no run.
        InputError: ``limit`` is below 1.
    """
    _checked(limit)
    cursor = await cursor_of(storage, before)
    rows, more = await _page(storage, runs or RunFilter(), limit, cursor)
    views = [RunView.from_record(r) for r in rows]
    return RunPage(views, views[-1].run_id if more and views else None)


async def iter_runs(
    storage: Storage, runs: RunFilter | None = None, *, limit: int | None = None
) -> AsyncIterator[RunView]:
    """Every run ``runs`` lets through, newest first, read a page at a time.

    Example:
        >>> ids = [run.run_id async for run in iter_runs(storage, RunFilter(workflow="checkout"))]

    Args:
        storage: an opened storage.
        runs: the filter; None: every run.
        limit: stop after this many runs (the newest); None: every one.

    Raises:
        InputError: ``limit`` is below 1.
    """
    _checked(limit)
    wanted = runs or RunFilter()
    cursor, given = None, 0
    while True:
        want = _SCAN_BATCH if limit is None else min(_SCAN_BATCH, limit - given)
        rows, more = await _page(storage, wanted, want, cursor)
        for row in rows:
            yield RunView.from_record(row)
        given += len(rows)
        if not more or given == limit:
            return
        cursor = RunCursor(rows[-1].created_at, rows[-1].run_id)


async def count_ended_runs(storage: Storage, *, ended_before: float) -> int:
    """How many runs ended before ``ended_before``: what pruning at that bound would delete.

    Only runs created before the bound can have ended before it, so the scan starts there and
    walks older runs by keyset, a page at a time.

    Args:
        storage: an opened storage.
        ended_before: epoch seconds.
    """
    count = 0
    cursor = RunCursor(ended_before, "")
    while True:
        rows = await storage.list_runs(statuses=TERMINAL_STATUSES, limit=_SCAN_BATCH, before=cursor)
        count += sum(r.completed_at is not None and r.completed_at < ended_before for r in rows)
        if len(rows) < _SCAN_BATCH:
            return count
        cursor = RunCursor(rows[-1].created_at, rows[-1].run_id)
