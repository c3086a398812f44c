"""MemoryStorage: the Storage protocol kept in a few dicts, for tests and the test toolkit.

This backend is the reference semantics of the contract suite (tests/contract): every rule of
``protocol.py`` is written here as plainly as possible, so that a disagreement between it and a
SQL backend points at the SQL. It persists nothing and shares nothing between processes.

Each method validates everything first and only then mutates, so that a refused call leaves no
trace (DESIGN §2.4). All methods run on one event loop and never await in between, so no lock is
needed. Values are deep-copied on the way in and on the way out: a caller mutating a payload it
passed in or got back cannot change what is stored, just as with a database.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Collection
from typing import Any, TypeVar

from pyworkflow.events import EventType, HookStatus, RunStatus
from pyworkflow.exceptions import (
    ConcurrencyConflictError,
    IdempotencyConflictError,
    InvalidRunStateError,
    RunNotFoundError,
    StorageError,
)
from pyworkflow.storage._memory_family import created_runs, ending_updates, signalled
from pyworkflow.storage._memory_hooks import HookTable
from pyworkflow.storage._memory_steps import MemoryStepMethods, StepLeaseTable
from pyworkflow.storage.records import (
    SUSPECT_RECOVERIES,
    AppendResult,
    AppendWrite,
    EventRecord,
    HookRecord,
    NewRun,
    RunCursor,
    RunRecord,
)

__all__ = ["MemoryStorage"]

_T = TypeVar("_T")


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _suspect(record: RunRecord) -> bool:
    """Whether claiming the (runnable) run now makes it a suspect (``SUSPECT_RECOVERIES``)."""
    lapsed = record.lease_owner is not None
    return record.recovery_count + (1 if lapsed else 0) >= SUSPECT_RECOVERIES


def _copy(value: _T) -> _T:
    """A deep copy of a JSON-compatible tree, so stored state never aliases a caller's.

    JSON trees (what the engine stores) are copied directly, several times faster than
    ``copy.deepcopy``, and so are the JSON values of events and runs (every start returned
    its run through ``deepcopy``: 15% of a burst of starts); anything else goes through it.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}  # type: ignore[attr-defined, return-value]
    if kind is list:
        return [_copy(v) for v in value]  # type: ignore[attr-defined, return-value]
    if kind is EventRecord:
        return dataclasses.replace(value, payload=_copy(value.payload))  # type: ignore[attr-defined, type-var]
    if kind is RunRecord:  # frozen: only its JSON values can be changed in place
        return dataclasses.replace(  # type: ignore[type-var]
            value,
            args=_copy(value.args),  # type: ignore[attr-defined]
            result=_copy(value.result),  # type: ignore[attr-defined]
            error=_copy(value.error),  # type: ignore[attr-defined]
        )
    return copy.deepcopy(value)


class MemoryStorage(MemoryStepMethods):
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
            return _copy(existing), False
        if run.run_id in self._runs:
            raise StorageError(f"a run with id {run.run_id!r} already exists")
        record = dataclasses.replace(run.initial_record(), args=_copy(run.args))
        self._insert(record)
        self._events[run.run_id] = [
            EventRecord(run.run_id, seq, type_, _copy(payload), run.now)
            for seq, type_, payload in run.initial_events()
        ]
        if run.idempotency_key is not None:
            self._keys[run.idempotency_key] = run.run_id
        return _copy(record), True

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None if there is no run with this id."""
        record = self._runs.get(run_id)
        return None if record is None else _copy(record)

    async def list_runs(
        self,
        *,
        statuses: Collection[RunStatus] | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        before: RunCursor | None = None,
        parent_run_id: str | None = None,
    ) -> list[RunRecord]:
        """Runs newest first by ``(created_at, run_id)``, filtered, one page of ``limit``.

        Args:
            statuses: keep runs in one of these statuses (None: any).
            workflow_name: keep runs of this workflow (None: any).
            limit: the page size.
            before: the cursor of the last run of the previous page; the page starts after it.
            parent_run_id: keep the children of this run (None: any run).
        """
        wanted = None if statuses is None else set(statuses)
        rows = [
            r
            for r in self._runs.values()
            if (wanted is None or r.status in wanted)
            and (workflow_name is None or r.workflow_name == workflow_name)
            and (parent_run_id is None or r.parent_run_id == parent_run_id)
            and (before is None or (r.created_at, r.run_id) < (before.created_at, before.run_id))
        ]
        rows.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
        return [_copy(r) for r in rows[: max(limit, 0)]]

    async def load_events(self, run_id: str, after_seq: int = 0) -> list[EventRecord]:
        """Events of a run with ``seq > after_seq``, in seq order (empty for an unknown run)."""
        return [_copy(e) for e in self._events.get(run_id, []) if e.seq > after_seq]

    # --- the lease holder's writes ------------------------------------------------------------

    async def append(self, write: AppendWrite) -> AppendResult:
        """Apply one turn of a run: its new events and the run's new state, all or nothing.

        A terminal status clears ``wake_at`` and the lease and sets ``completed_at``. Releasing
        the lease while ``signal_seq`` is ahead of ``write.signals_seen`` makes the run due at
        once, so a signal that raced the turn is not lost. ``write.hooks`` and
        ``write.new_runs`` are created with the turn; a terminal status also reaches the run's
        children and parent (see ``_memory_family.ending_updates``).

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
                payload=_copy(event.payload),
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
            result=record.result if write.result is None else _copy(write.result),
            error=record.error if write.error is None else _copy(write.error),
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

    # --- leases -------------------------------------------------------------------------------

    def _runnable(
        self,
        record: RunRecord,
        now: float,
        names: Collection[str] | None = None,
        *,
        due_only: bool = True,
    ) -> bool:
        """Whether ``claim_runs`` may take the run.

        Not terminal, due (with a wake-up time at all, unless ``due_only``), of one of
        ``names`` (None: any), and nobody holds an unexpired lease on it.
        """
        return (
            not record.status.is_terminal
            and record.wake_at is not None
            and (record.wake_at <= now or not due_only)
            and (record.lease_expires_at is None or record.lease_expires_at <= now)
            and (names is None or record.workflow_name in names)
        )

    async def claim_runs(
        self,
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
        """Lease up to ``limit`` runnable runs to ``owner``, earliest ``wake_at`` first.

        Args:
            owner: the claiming worker.
            now: the executor's clock.
            lease_expires_at: when the new leases lapse unless renewed.
            limit: the most runs to claim.
            workflow_names: claim only runs of these workflows (None: any).
            run_ids: claim only these runs (None: any).
            due_only: only runs whose ``wake_at`` has come; False also takes live runs whose
                ``wake_at`` is still ahead (see ``Storage.claim_runs``).
            suspects: only suspects, none of them, or either (see ``Storage.claim_runs``).

        Returns:
            The claimed runs, leased to ``owner``; their status is left as it was. A run taken
            over from an expired lease has its ``recovery_count`` raised by one and names the
            lease's owner in ``previous_owner``.
        """
        names = None if workflow_names is None else set(workflow_names)
        ids = None if run_ids is None else set(run_ids)
        candidates = [
            r
            for r in self._runs.values()
            if self._runnable(r, now, names, due_only=due_only)
            and (ids is None or r.run_id in ids)
            and (suspects is None or _suspect(r) is suspects)
        ]
        candidates.sort(key=lambda r: (r.wake_at, r.run_id))
        claimed = []
        for record in candidates[: max(limit, 0)]:
            recovered = record.lease_owner is not None  # its previous holder let the lease lapse
            updated = dataclasses.replace(
                record,
                lease_owner=owner,
                lease_expires_at=lease_expires_at,
                recovery_count=record.recovery_count + (1 if recovered else 0),
                updated_at=now,
            )
            self._runs[record.run_id] = updated
            claimed.append(dataclasses.replace(_copy(updated), previous_owner=record.lease_owner))
        return claimed

    async def take_due_runs(
        self,
        *,
        now: float,
        until: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
    ) -> list[str]:
        """Set ``wake_at = until`` on up to ``limit`` runnable runs; their ids, earliest first.

        The runs ``claim_runs`` would claim; nothing else about them changes.
        """
        names = None if workflow_names is None else set(workflow_names)
        due = sorted(
            (r.wake_at, run_id)
            for run_id, r in self._runs.items()
            if r.wake_at is not None and self._runnable(r, now, names)
        )
        taken = [run_id for _, run_id in due[: max(limit, 0)]]
        for run_id in taken:
            self._runs[run_id] = dataclasses.replace(self._runs[run_id], wake_at=until)
        return taken

    async def renew_leases(
        self, *, owner: str, run_ids: Collection[str], now: float, lease_expires_at: float
    ) -> set[str]:
        """Extend the leases ``owner`` still holds; returns the ids it still holds.

        A lease that lapsed but that nobody else claimed is still ``owner``'s and is renewed.
        """
        held = {
            run_id
            for run_id in set(run_ids)
            if run_id in self._runs and self._runs[run_id].lease_owner == owner
        }
        for run_id in held:
            self._runs[run_id] = dataclasses.replace(
                self._runs[run_id], lease_expires_at=lease_expires_at, updated_at=now
            )
        return held

    async def release_runs(self, *, owner: str, run_ids: Collection[str], now: float) -> None:
        """Hand back the runs ``owner`` holds (clean shutdown): drop the lease, make them due."""
        for run_id in set(run_ids):
            record = self._runs.get(run_id)
            if record is None or record.lease_owner != owner:
                continue
            self._runs[run_id] = dataclasses.replace(
                record,
                lease_owner=None,
                lease_expires_at=None,
                wake_at=None if record.status.is_terminal else now,
                updated_at=now,
            )

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

    async def get_hook(self, token_hash: str) -> HookRecord | None:
        """The hook whose token hashes to ``token_hash``, or None."""
        return self._hooks.get(token_hash)

    async def list_hooks(
        self, *, run_id: str | None = None, status: HookStatus | None = None, limit: int = 100
    ) -> list[HookRecord]:
        """Hooks newest first (by ``created_at``), of one run and/or in one status."""
        return self._hooks.select(run_id=run_id, status=status, limit=limit)

    async def deliver_hook(self, token_hash: str, payload: Any, *, now: float) -> HookRecord:
        """Store a waiting hook's payload, bump its run's ``signal_seq`` and make it due.

        Raises HookNotFoundError, HookAlreadyReceivedError or HookExpiredError, writing
        nothing (see ``Storage.deliver_hook``).
        """
        run_id = self._hooks.run_of(token_hash)
        run = None if run_id is None else self._runs.get(run_id)
        received = self._hooks.deliver(token_hash, payload, now, run)
        assert run is not None  # deliver() raised otherwise
        self._runs[run.run_id] = signalled(run, now)
        return received

    async def expire_hook(self, run_id: str, hook_id: str, *, now: float) -> HookRecord:
        """Turn a waiting hook expired; returns it as it stands (a delivery may have won).

        Raises HookNotFoundError if the run has no such hook.
        """
        return self._hooks.expire(run_id, hook_id)

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
            payload=_copy(payload),
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
        return _copy(updated)

    async def next_wake_at(self, *, workflow_names: Collection[str] | None = None) -> float | None:
        """The earliest time at which a non-terminal run becomes claimable, or None.

        That is ``wake_at`` for a run nobody holds; for a leased run (the call takes no ``now``
        to tell whether its lease lapsed) the later of ``wake_at`` and the lease's expiry, the
        moment a crashed holder's run can be recovered.
        """
        names = None if workflow_names is None else set(workflow_names)
        times = [
            r.wake_at if r.lease_expires_at is None else max(r.wake_at, r.lease_expires_at)
            for r in self._runs.values()
            if not r.status.is_terminal
            and r.wake_at is not None
            and (names is None or r.workflow_name in names)
        ]
        return min(times, default=None)

    # --- retention ----------------------------------------------------------------------------

    async def delete_ended_runs(self, *, ended_before: float, limit: int) -> list[str]:
        """Delete up to ``limit`` runs that ended before ``ended_before``, with their events, hooks.

        Oldest ends first. A run's idempotency key goes with it, so the key can start a new run.

        Returns:
            The ids of the deleted runs.
        """
        ended = sorted(
            (r.completed_at, r.run_id)
            for r in self._runs.values()
            if r.status.is_terminal and r.completed_at is not None and r.completed_at < ended_before
        )
        gone = [run_id for _, run_id in ended[: max(limit, 0)]]
        for run_id in gone:
            record = self._runs.pop(run_id)
            # Every per-run store goes here too.
            self._events.pop(run_id, None)
            self._children.pop(run_id, None)
            if record.parent_run_id is not None:
                self._children.get(record.parent_run_id, set()).discard(run_id)
            self._hooks.delete_run(run_id)
            self._steps.delete_run(run_id)
            if record.idempotency_key is not None:
                self._keys.pop(record.idempotency_key, None)
        return gone
