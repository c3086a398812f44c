"""SqlStorage: the Storage protocol on a SQL database, each method one script of ``_scripts/``.

A dialect subclasses it and says how a script runs (:meth:`SqlStorage._run`: which connection,
which transaction, which errors become ours) and how it opens and closes; the session it
hands a script (``_session.Session``) runs the statements. Everything a method means is the
script's, written once.
"""

from __future__ import annotations

import abc
import asyncio
import os
import socket
from collections.abc import Callable, Collection, Coroutine, Sequence
from typing import Any, TypeVar

from pyworkflow.events import HookStatus, RunStatus, ScheduleStatus
from pyworkflow.storage.records import (
    AppendResult,
    AppendWrite,
    EventRecord,
    HookRecord,
    NewRun,
    OwnerRecord,
    RunCursor,
    RunRecord,
    RunSnapshot,
    ScheduleFire,
    ScheduleRecord,
    StepLease,
    StepOffer,
)
from pyworkflow.storage.sql._presence import Presences
from pyworkflow.storage.sql._scripts import (
    appends,
    hooks,
    leases,
    owners,
    retention,
    runs,
    schedules,
    step_leases,
)
from pyworkflow.storage.sql._scripts import snapshots as whole_runs
from pyworkflow.storage.sql._session import Session
from pyworkflow.storage.sql._stream_methods import SqlStreamMethods

__all__ = ["Script", "SqlStorage"]

_T = TypeVar("_T")

Script = Callable[[Session], Coroutine[Any, Any, _T]]
"""A script bound to its arguments: what ``SqlStorage._run`` runs on a session."""


class SqlStorage(SqlStreamMethods, abc.ABC):
    """The Storage protocol on a SQL database; a dialect implements the abstract methods.

    Every protocol method runs one script (``_scripts/``) through :meth:`_run`, on a session
    of the dialect, in one transaction when it writes.
    """

    url: str
    """Where the data lives, password masked, for messages and logs."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create or check the schema. Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and threads. Idempotent."""

    @abc.abstractmethod
    async def _run(self, script: Script[_T], *, writes: bool) -> _T:
        """Run ``script`` on a session of this dialect; what it returns or raises.

        ``writes``: the script writes, so it runs inside one write transaction (which it may
        share with other scripts, each still succeeding or failing on its own). The dialect
        translates its driver's errors into StorageError here, the cause chained.
        """

    @property
    @abc.abstractmethod
    def _presences(self) -> Presences:
        """How this dialect makes a lease owner's liveness observable (``_presence.py``)."""

    async def _run_whole(self, script: Script[_T], *, writes: bool) -> _T:
        """Run ``script`` in one transaction that sees one state of the database, all or nothing.

        For the scripts that read or write runs whole (``_scripts/snapshots.py``), whose
        statements must not see a write committed between them. The default runs it as a
        write (SQLite: ``BEGIN IMMEDIATE``, which holds the write lock, so a read there is
        one state too); a dialect whose writes each commit on their own overrides it.
        """
        return await self._run(script, writes=True)

    async def _run_atomic(self, script: Script[_T]) -> _T:
        """Run a writing ``script`` in one transaction, all of its statements or none.

        For the scripts that write several statements which must stand or fall together
        (firing a schedule: its state and its slots' runs). The default is :meth:`_run`
        (SQLite runs each writing script in one transaction of its own, or a savepoint of a
        shared one); a dialect whose writes each commit on their own overrides it.
        """
        return await self._run(script, writes=True)

    # --- runs -----------------------------------------------------------------------------------

    async def create_run(self, run: NewRun) -> tuple[RunRecord, bool]:
        """Insert a run and its first events in one transaction; see ``Storage.create_run``."""
        return await self._run(lambda db: runs.create_run(db, run), writes=True)

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""
        return await self._run(lambda db: runs.get_run(db, run_id), writes=False)

    async def list_runs(
        self,
        *,
        statuses: Collection[RunStatus] | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        before: RunCursor | None = None,
        parent_run_id: str | None = None,
        schedule_id: str | None = None,
        run_id_prefix: str | None = None,
        tags: Collection[str] | None = None,
    ) -> list[RunRecord]:
        """Runs newest first, filtered, keyset-paged; see ``Storage.list_runs``."""
        return await self._run(
            lambda db: runs.list_runs(
                db,
                statuses=statuses,
                workflow_name=workflow_name,
                limit=limit,
                before=before,
                parent_run_id=parent_run_id,
                schedule_id=schedule_id,
                run_id_prefix=run_id_prefix,
                tags=tags,
            ),
            writes=False,
        )

    async def count_runs(
        self, *, workflow_name: str | None = None, since: float | None = None
    ) -> dict[RunStatus, int]:
        """Runs per status; see ``Storage.count_runs``."""
        return await self._run(lambda db: runs.count_runs(db, workflow_name, since), writes=False)

    async def count_workflow_runs(self, *, since: float | None = None) -> dict[str, int]:
        """Runs per workflow; see ``Storage.count_workflow_runs``."""
        return await self._run(lambda db: runs.count_workflow_runs(db, since), writes=False)

    async def count_workflow_statuses(
        self, *, since: float | None = None
    ) -> dict[str, dict[RunStatus, int]]:
        """Runs per workflow and status; see ``Storage.count_workflow_statuses``."""
        return await self._run(lambda db: runs.count_workflow_statuses(db, since), writes=False)

    async def load_events(self, run_id: str, after_seq: int = 0) -> list[EventRecord]:
        """Events of a run with ``seq > after_seq``, in seq order."""
        return await self._run(lambda db: runs.load_events(db, run_id, after_seq), writes=False)

    async def append(self, write: AppendWrite) -> AppendResult:
        """Apply one turn atomically; see ``Storage.append``."""
        return await self._run(lambda db: appends.append(db, write), writes=True)

    async def request_cancel(self, run_id: str, *, now: float, reason: str | None) -> bool:
        """Record a cancel request and make the run due; False if the run has ended."""
        return await self._run(
            lambda db: runs.request_cancel(db, run_id, now=now, reason=reason), writes=True
        )

    async def reopen_failed_run(
        self, run_id: str, *, now: float, payload: dict[str, Any]
    ) -> RunRecord:
        """Append WORKFLOW_RESUMED to a failed run and make it pending and due, atomically."""
        return await self._run(
            lambda db: runs.reopen_failed_run(db, run_id, now=now, payload=payload), writes=True
        )

    # --- leases ---------------------------------------------------------------------------------

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
        queues: Collection[str] | None = None,
    ) -> list[RunRecord]:
        """Lease up to ``limit`` runnable runs, earliest ``wake_at`` first."""
        return await self._run(
            lambda db: leases.claim_runs(
                db,
                owner=owner,
                now=now,
                lease_expires_at=lease_expires_at,
                limit=limit,
                workflow_names=workflow_names,
                run_ids=run_ids,
                due_only=due_only,
                suspects=suspects,
                queues=queues,
            ),
            writes=True,
        )

    async def take_due_runs(
        self,
        *,
        now: float,
        until: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
    ) -> list[str]:
        """Set ``wake_at = until`` on up to ``limit`` runnable runs; their ids, earliest first."""
        return await self._run(
            lambda db: leases.take_due_runs(
                db, now=now, until=until, limit=limit, workflow_names=workflow_names
            ),
            writes=True,
        )

    async def renew_leases(
        self, *, owner: str, run_ids: Collection[str], now: float, lease_expires_at: float
    ) -> set[str]:
        """Extend the leases ``owner`` still holds; returns the ids it still holds."""
        return await self._run(
            lambda db: leases.renew_leases(
                db, owner=owner, run_ids=run_ids, now=now, lease_expires_at=lease_expires_at
            ),
            writes=True,
        )

    async def release_runs(self, *, owner: str, run_ids: Collection[str], now: float) -> None:
        """Drop the leases and make the runs due at once."""
        await self._run(
            lambda db: leases.release_runs(db, owner=owner, run_ids=run_ids, now=now), writes=True
        )

    async def next_wake_at(
        self,
        *,
        workflow_names: Collection[str] | None = None,
        queues: Collection[str] | None = None,
    ) -> float | None:
        """When the next run becomes claimable, or None; see ``Storage.next_wake_at``."""
        return await self._run(
            lambda db: leases.next_wake_at(db, workflow_names=workflow_names, queues=queues),
            writes=False,
        )

    # --- hooks ----------------------------------------------------------------------------------

    async def get_hook(self, token_hash: str) -> HookRecord | None:
        """The hook whose token hashes to ``token_hash``, or None."""
        return await self._run(lambda db: hooks.get_hook(db, token_hash), writes=False)

    async def list_hooks(
        self, *, run_id: str | None = None, status: HookStatus | None = None, limit: int = 100
    ) -> list[HookRecord]:
        """Hooks newest first, of one run and/or in one status."""
        return await self._run(
            lambda db: hooks.list_hooks(db, run_id=run_id, status=status, limit=limit),
            writes=False,
        )

    async def deliver_hook(self, token_hash: str, payload: Any, *, now: float) -> HookRecord:
        """Store a waiting hook's payload and signal its run; see ``Storage.deliver_hook``."""
        return await self._run(
            lambda db: hooks.deliver_hook(db, token_hash, payload, now=now), writes=True
        )

    async def expire_hook(self, run_id: str, hook_id: str, *, now: float) -> HookRecord:
        """Turn a waiting hook expired; returns it as it stands (a delivery may have won)."""
        return await self._run(lambda db: hooks.expire_hook(db, run_id, hook_id), writes=True)

    # --- step leases ----------------------------------------------------------------------------

    async def acquire_step(
        self,
        run_id: str,
        step_id: str,
        *,
        attempt: int,
        owner: str,
        now: float,
        lease_expires_at: float,
    ) -> StepLease | None:
        """Take the lease of an attempt of a step; see ``Storage.acquire_step``."""
        return await self._run(
            lambda db: step_leases.acquire_step(
                db,
                run_id,
                step_id,
                attempt=attempt,
                owner=owner,
                now=now,
                lease_expires_at=lease_expires_at,
            ),
            writes=True,
        )

    async def renew_step(
        self, run_id: str, step_id: str, *, owner: str, now: float, lease_expires_at: float
    ) -> bool:
        """Extend ``owner``'s step lease; False when the row is gone or held by another."""
        return await self._run(
            lambda db: step_leases.renew_step(
                db, run_id, step_id, owner=owner, lease_expires_at=lease_expires_at
            ),
            writes=True,
        )

    async def release_step(self, run_id: str, step_id: str, *, owner: str) -> None:
        """Delete the step's lease row if ``owner`` holds it."""
        await self._run(
            lambda db: step_leases.release_step(db, run_id, step_id, owner=owner), writes=True
        )

    async def list_step_leases(self, run_id: str) -> list[StepLease]:
        """The run's step lease rows, by ``step_id``."""
        return await self._run(lambda db: step_leases.list_step_leases(db, run_id), writes=False)

    async def offer_steps(self, run_id: str, offers: Sequence[StepOffer], *, now: float) -> None:
        """Offer attempts to the local workers of their queues; see ``Storage.offer_steps``."""
        if offers:
            await self._run(
                lambda db: step_leases.offer_steps(db, run_id, offers, now=now), writes=True
            )

    async def list_offered_steps(
        self,
        *,
        queues: Collection[str] | None,
        workflow_names: Collection[str],
        now: float,
        limit: int,
    ) -> list[StepLease]:
        """Offered attempts free to take; see ``Storage.list_offered_steps``."""
        return await self._run(
            lambda db: step_leases.list_offered_steps(
                db, queues=queues, workflow_names=workflow_names, now=now, limit=limit
            ),
            writes=False,
        )

    # --- lease owners ---------------------------------------------------------------------------

    async def announce_owner(
        self, owner: str, *, now: float, on_lost: Callable[[], None] | None = None
    ) -> bool:
        """Make ``owner``'s liveness observable; see ``Storage.announce_owner``."""
        presences = self._presences
        key, continuous = await presences.hold(owner, on_lost)
        host, pid = socket.gethostname(), os.getpid()
        try:
            await self._run(
                lambda db: owners.add_owner(db, owner, host=host, pid=pid, lock_key=key, now=now),
                writes=True,
            )
        except BaseException:
            await presences.drop(owner)
            raise
        return continuous

    async def withdraw_owner(self, owner: str) -> None:
        """Stop showing ``owner`` alive; see ``Storage.withdraw_owner``."""
        await self._presences.drop(owner)

    async def list_owners(self) -> list[OwnerRecord]:
        """Every announced owner and whether it is alive; see ``Storage.list_owners``."""
        rows = await self._run(owners.list_owners, writes=False)
        starts = await self._run(owners.owner_starts, writes=False)
        dead = set(await self._presences.dead_among(rows)) if rows else set()
        return [
            OwnerRecord(owner, host, pid, starts.get(owner), owner not in dead)
            for owner, host, pid, _key in rows
        ]

    async def take_over_dead_owners(self, *, now: float) -> list[str]:
        """Free what dead owners held; see ``Storage.take_over_dead_owners``."""
        rows = await self._run(owners.list_owners, writes=False)
        dead = await self._presences.dead_among(rows) if rows else []
        if dead:
            await self._run(lambda db: owners.take_over(db, dead, now), writes=True)
        return dead

    # --- retention ------------------------------------------------------------------------------

    async def delete_ended_runs(self, *, ended_before: float, limit: int) -> list[str]:
        """Delete up to ``limit`` runs that ended before ``ended_before``, with their rows."""
        return await self._run(
            lambda db: retention.delete_ended_runs(db, ended_before=ended_before, limit=limit),
            writes=True,
        )

    # --- schedules ------------------------------------------------------------------------------

    async def create_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord:
        """Insert a schedule; see ``Storage.create_schedule``."""
        return await self._run_atomic(lambda db: schedules.create_schedule(db, schedule))

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, or None."""
        return await self._run(lambda db: schedules.get_schedule(db, schedule_id), writes=False)

    async def list_schedules(
        self,
        *,
        status: ScheduleStatus | None = None,
        workflow_name: str | None = None,
        limit: int = 1000,
    ) -> list[ScheduleRecord]:
        """Schedules by id, filtered; see ``Storage.list_schedules``."""
        return await self._run(
            lambda db: schedules.list_schedules(
                db, status=status, workflow_name=workflow_name, limit=limit
            ),
            writes=False,
        )

    async def update_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord | None:
        """Store a schedule if its version is current; see ``Storage.update_schedule``."""
        return await self._run(lambda db: schedules.update_schedule(db, schedule), writes=True)

    async def due_schedules(
        self,
        *,
        now: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
        after: tuple[float, str] | None = None,
    ) -> list[ScheduleRecord]:
        """Schedules due at ``now``, in order; see ``Storage.due_schedules``."""
        return await self._run(
            lambda db: schedules.due_schedules(
                db, now=now, limit=limit, workflow_names=workflow_names, after=after
            ),
            writes=False,
        )

    async def next_schedule_due_at(
        self, *, workflow_names: Collection[str] | None = None, after: float | None = None
    ) -> float | None:
        """The earliest ``due_at``, or None; see ``Storage.next_schedule_due_at``."""
        return await self._run(
            lambda db: schedules.next_schedule_due_at(
                db, workflow_names=workflow_names, after=after
            ),
            writes=False,
        )

    async def fire_schedule(self, fire: ScheduleFire) -> list[str] | None:
        """A schedule's new state and its slots' runs in one transaction; see the protocol."""
        return await self._run_atomic(lambda db: schedules.fire_schedule(db, fire))

    async def fire_schedules(self, fires: Sequence[ScheduleFire]) -> list[list[str] | None]:
        """Several fires, each its own script; see ``Storage.fire_schedules``.

        Issued together, so SQLite's group commit shares commits between them (measured
        faster than one script running them all, B10); PostgreSQL overrides this with one
        transaction of three statements.
        """
        return list(await asyncio.gather(*(self.fire_schedule(f) for f in fires)))

    async def live_schedule_runs(self, schedule_ids: Collection[str]) -> dict[str, list[str]]:
        """The live runs of these schedules, by schedule id."""
        return await self._run(
            lambda db: schedules.live_schedule_runs(db, schedule_ids), writes=False
        )

    async def count_schedule_runs(self, schedule_id: str) -> dict[RunStatus, int]:
        """How many stored runs the schedule started, by status."""
        return await self._run(
            lambda db: schedules.count_schedule_runs(db, schedule_id), writes=False
        )

    # --- snapshots ------------------------------------------------------------------------------

    async def read_run_snapshots(self, run_ids: Collection[str]) -> list[RunSnapshot]:
        """Each run whole, read in one consistent view; see ``Storage.read_run_snapshots``."""
        return await self._run_whole(
            lambda db: whole_runs.read_run_snapshots(db, run_ids), writes=False
        )

    async def write_run_snapshots(
        self, snapshots: Sequence[RunSnapshot], *, replacing: Sequence[RunRecord] = ()
    ) -> None:
        """Store runs whole in one transaction; see ``Storage.write_run_snapshots``."""
        await self._run_whole(
            lambda db: whole_runs.write_run_snapshots(db, self.url, snapshots, replacing),
            writes=True,
        )
