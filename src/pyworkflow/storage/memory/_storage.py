"""MemoryStorage: the Storage protocol kept in a few dicts, for tests and the test toolkit.

This backend is the reference semantics of the contract suite (tests/contract): every rule of
``protocol.py`` is written here as plainly as possible, so that a disagreement between it and a
SQL backend points at the SQL. It persists nothing and shares nothing between processes.

Each method validates everything first and only then mutates, so that a refused call leaves no
trace (DESIGN §2.4). All methods run on one event loop and never await in between, so no lock is
needed. Values are deep-copied on the way in and on the way out: a caller mutating a payload it
passed in or got back cannot change what is stored, just as with a database.

Runs, their logs and their lifecycle are here; the methods of each other concern are a base of
``MemoryStorage`` in a module of their own (run queries, hooks, leases, step leases, owners,
snapshots, schedules, streams).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import (
    ConcurrencyConflictError,
    IdempotencyConflictError,
    InvalidRunStateError,
    RunNotFoundError,
    StorageError,
)
from pyworkflow.storage.memory._copies import copy_tree
from pyworkflow.storage.memory._family import created_runs, ending_updates, signalled
from pyworkflow.storage.memory._hook_methods import MemoryHookMethods
from pyworkflow.storage.memory._hooks import HookTable
from pyworkflow.storage.memory._leases import MemoryLeaseMethods
from pyworkflow.storage.memory._owners import MemoryOwnerMethods
from pyworkflow.storage.memory._run_queries import MemoryRunQueries
from pyworkflow.storage.memory._schedules import MemoryScheduleMethods
from pyworkflow.storage.memory._snapshots import MemorySnapshotMethods
from pyworkflow.storage.memory._steps import MemoryStepMethods, StepLeaseTable
from pyworkflow.storage.memory._streams import MemoryStreamMethods
from pyworkflow.storage.records import (
    AppendResult,
    AppendWrite,
    EventRecord,
    NewRun,
    RunRecord,
    ScheduleRecord,
)

__all__ = ["MemoryStorage"]


class MemoryStorage(
    MemoryRunQueries,
    MemoryHookMethods,
    MemoryLeaseMethods,
    MemoryStepMethods,
    MemoryOwnerMethods,
    MemorySnapshotMethods,
    MemoryScheduleMethods,
    MemoryStreamMethods,
):
    """The Storage protocol in memory: for tests and the test toolkit, not for production.

    Nothing survives the process. Use it where a database would only slow a test down; the
    contract suite runs it side by side with the SQL backends, so it behaves like them.

    Example:
        >>> storage = MemoryStorage()
        >>> await storage.open()
        >>> record, created = await storage.create_run(new_run)
    """

    url = "memory://"

    def __init__(self) -> None:
        self._runs: dict[str, RunRecord] = {}
        self._events: dict[str, list[EventRecord]] = {}
        self._keys: dict[str, str] = {}  # idempotency key -> run id
        # parent run id -> its children's ids: a run's end reaches them without a scan of
        # every run (which made a burst of N runs O(N^2)).
        self._children: dict[str, set[str]] = {}
        self._hooks = HookTable()
        self._steps = StepLeaseTable()
        self._owners: dict[str, bool] = {}
        self._schedules: dict[str, ScheduleRecord] = {}
        # schedule id -> the ids of its runs, in creation order (a dict as an ordered set)
        self._by_schedule: dict[str, dict[str, None]] = {}
        self._streams = {}

    @classmethod
    def from_url(cls, url: str) -> MemoryStorage:
        """A fresh MemoryStorage for ``memory://`` (the URL carries nothing more)."""
        return cls()

    async def open(self) -> None:
        """Do nothing: there is nothing to connect to."""

    async def close(self) -> None:
        """Do nothing: the data lives as long as the object."""

    # --- runs ---------------------------------------------------------------------------------

    async def create_run(self, run: NewRun) -> tuple[RunRecord, bool]:
        """Insert a run and its WORKFLOW_STARTED event (seq 1).

        Args:
            run: the run to create. With a lease owner the run is leased to it at once and is
                due only when that lease lapses; otherwise it is due at ``run.now``.

        Returns:
            The new record and True, or the run already holding ``run.idempotency_key`` (of the
            same workflow) and False.

        Raises:
            IdempotencyConflictError: the key belongs to a run of another workflow.
            StorageError: ``run.run_id`` is already taken.
        """
        if run.idempotency_key is not None and run.idempotency_key in self._keys:
            existing = self._runs[self._keys[run.idempotency_key]]
            if existing.workflow_name != run.workflow_name:
                raise IdempotencyConflictError(
                    run.idempotency_key, existing.workflow_name, run.workflow_name
                )
            return copy_tree(existing), False
        if run.run_id in self._runs:
            raise StorageError(f"a run with id {run.run_id!r} already exists")
        return copy_tree(self._store_new_run(run)), True

    def _store_new_run(self, run: NewRun) -> RunRecord:
        """Insert a run and its first events; its key and id are known to be free."""
        record = dataclasses.replace(run.initial_record(), args=copy_tree(run.args))
        self._insert(record)
        self._events[run.run_id] = [
            EventRecord(run.run_id, seq, type_, copy_tree(payload), run.now)
            for seq, type_, payload in run.initial_events()
        ]
        if run.idempotency_key is not None:
            self._keys[run.idempotency_key] = run.run_id
        return record

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None if there is no run with this id."""
        record = self._runs.get(run_id)
        return None if record is None else copy_tree(record)

    async def load_events(self, run_id: str, after_seq: int = 0) -> list[EventRecord]:
        """Events of a run with ``seq > after_seq``, in seq order (empty for an unknown run)."""
        return [copy_tree(e) for e in self._events.get(run_id, []) if e.seq > after_seq]

    # --- the lease holder's writes ------------------------------------------------------------

    async def append(self, write: AppendWrite) -> AppendResult:
        """Apply one turn of a run: its new events and the run's new state, all or nothing.

        A terminal status clears ``wake_at`` and the lease and sets ``completed_at``. Releasing
        the lease while ``signal_seq`` is ahead of ``write.signals_seen`` makes the run due at
        once, so a signal that raced the turn is not lost. ``write.hooks`` and
        ``write.new_runs`` are created with the turn; a terminal status also reaches the run's
        children and parent (see ``_family.ending_updates``).

        Raises:
            RunNotFoundError: there is no such run.
            ConcurrencyConflictError: ``write.owner`` does not hold the lease, or the run's
                ``last_seq`` is not ``write.expected_seq``; nothing is written.
            StorageError: a new hook or run repeats a stored one's key; nothing is written.
        """
        record = self._runs.get(write.run_id)
        if record is None:
            raise RunNotFoundError(write.run_id)
        # Invariant (DESIGN §2.3): one writer per run; a stale seq or lease writes nothing.
        if record.lease_owner != write.owner:
            raise ConcurrencyConflictError(
                write.run_id,
                write.expected_seq,
                f"the lease is held by {record.lease_owner!r}, not {write.owner!r}",
            )
        if record.last_seq != write.expected_seq:
            raise ConcurrencyConflictError(
                write.run_id, write.expected_seq, f"the run is at seq {record.last_seq}"
            )
        self._hooks.check_new(write.run_id, write.hooks)
        new_runs = created_runs(write, self._runs, self._keys)
        events = [
            EventRecord(
                run_id=write.run_id,
                seq=write.expected_seq + i,
                type=event.type,
                payload=copy_tree(event.payload),
                created_at=write.now,
            )
            for i, event in enumerate(write.events, start=1)
        ]
        status = record.status if write.status is None else write.status
        wake_at = write.wake_at
        lease_owner: str | None = record.lease_owner
        lease_expires_at = write.lease_expires_at
        completed_at = record.completed_at
        if status.is_terminal:
            wake_at, lease_owner, lease_expires_at = None, None, None
            completed_at = write.now
        elif lease_expires_at is None:
            lease_owner = None
            if record.signal_seq > write.signals_seen:
                wake_at = write.now  # a signal arrived during the turn: run again at once
        updated = dataclasses.replace(
            record,
            status=status,
            result=record.result if write.result is None else copy_tree(write.result),
            error=record.error if write.error is None else copy_tree(write.error),
            updated_at=write.now,
            completed_at=completed_at,
            wake_at=wake_at,
            lease_owner=lease_owner,
            lease_expires_at=lease_expires_at,
            recovery_count=0 if write.progressed else record.recovery_count,
            last_seq=write.expected_seq + len(events),
        )
        # Everything is validated: from here on, write it all.
        self._hooks.insert(write.run_id, write.hooks, write.now)
        for new_record, new_events in new_runs:
            self._insert(new_record)
            self._events[new_record.run_id] = new_events
            if new_record.idempotency_key is not None:
                self._keys[new_record.idempotency_key] = new_record.run_id
            if new_record.continued_from == write.run_id:
                updated = dataclasses.replace(updated, continued_to=new_record.run_id)
        self._runs[write.run_id] = updated
        self._events[write.run_id].extend(events)
        if status.is_terminal:
            children = [self._runs[c] for c in self._children.get(write.run_id, ())]
            self._runs.update(ending_updates(self._runs, children, updated, write.now))
        return AppendResult(
            last_seq=updated.last_seq,
            signal_seq=updated.signal_seq,
            cancel_requested=updated.cancel_requested,
        )

    def _insert(self, record: RunRecord) -> None:
        """Store a new run's row (and, for a child, its place under its parent)."""
        self._runs[record.run_id] = record
        if record.parent_run_id is not None:
            self._children.setdefault(record.parent_run_id, set()).add(record.run_id)
        if record.schedule_id is not None:
            self._by_schedule.setdefault(record.schedule_id, {})[record.run_id] = None

    # --- outside writers ----------------------------------------------------------------------

    async def request_cancel(self, run_id: str, *, now: float, reason: str | None) -> bool:
        """Record a cancel request, bump ``signal_seq`` and make the run due.

        The lease, if any, stays with its holder: it sees the request in the AppendResult of
        its next append, or leaves the run due when it releases it.

        Returns:
            True, or False if there is no such run or it has ended.
        """
        record = self._runs.get(run_id)
        if record is None or record.status.is_terminal:
            return False
        self._runs[run_id] = signalled(record, now, cancel_requested=True, cancel_reason=reason)
        return True

    async def reopen_failed_run(
        self, run_id: str, *, now: float, payload: dict[str, Any]
    ) -> RunRecord:
        """Append WORKFLOW_RESUMED to a failed run and make it pending, unleased and due.

        The error and ``completed_at`` are cleared and the recovery count starts again.

        Raises:
            RunNotFoundError: there is no such run.
            InvalidRunStateError: the run's status is not FAILED.
        """
        record = self._runs.get(run_id)
        if record is None:
            raise RunNotFoundError(run_id)
        if record.status is not RunStatus.FAILED:
            raise InvalidRunStateError(run_id, record.status, "only a failed run can be resumed")
        resumed = EventRecord(
            run_id=run_id,
            seq=record.last_seq + 1,
            type=EventType.WORKFLOW_RESUMED,
            payload=copy_tree(payload),
            created_at=now,
        )
        updated = dataclasses.replace(
            record,
            status=RunStatus.PENDING,
            error=None,
            completed_at=None,
            recovery_count=0,
            wake_at=now,
            lease_owner=None,
            lease_expires_at=None,
            last_seq=resumed.seq,
            updated_at=now,
        )
        self._runs[run_id] = updated
        self._events[run_id].append(resumed)
        return copy_tree(updated)

    # --- retention ----------------------------------------------------------------------------

    async def delete_ended_runs(self, *, ended_before: float, limit: int) -> list[str]:
        """Delete up to ``limit`` runs that ended before ``ended_before``, with their events, hooks.

        Oldest ends first. A run's idempotency key goes with it, so the key can start a new run.

        Returns:
            The ids of the deleted runs.
        """
        self._hand_on_continued(ended_before)  # before a driver goes: see HAND_ON_CONTINUED
        ended = sorted(
            (r.completed_at, r.run_id)
            for r in self._runs.values()
            if r.status.is_terminal and r.completed_at is not None and r.completed_at < ended_before
        )
        gone = [run_id for _, run_id in ended[: max(limit, 0)]]
        for run_id in gone:
            self._forget(run_id)
        return gone

    def _forget(self, run_id: str) -> None:
        """Delete a run with every row of it (retention, a copy taking a run back)."""
        record = self._runs.pop(run_id)
        # Every per-run store goes here too.
        self._events.pop(run_id, None)
        self._children.pop(run_id, None)
        if record.parent_run_id is not None:
            self._children.get(record.parent_run_id, set()).discard(run_id)
        self._hooks.delete_run(run_id)
        self._steps.delete_run(run_id)
        self._forget_streams(run_id)
        if record.schedule_id is not None:
            self._by_schedule.get(record.schedule_id, {}).pop(run_id, None)
        if record.idempotency_key is not None:
            self._keys.pop(record.idempotency_key, None)
