"""SqlStorage: the Storage protocol on a SQL database, each method one script of ``_scripts/``.

A dialect subclasses it and says how a script runs (:meth:`SqlStorage._run`: which connection,
which transaction, which errors become ours) and how it opens and closes; the session it
hands a script (``_session.Session``) runs the statements. Everything a method means is the
script's, written once.

The methods of runs, their logs and hooks are here; those of leases, step leases, lease
owners, schedules and streams are its bases, one module each, as MemoryStorage's are.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence
from typing import Any

from pyworkflow.events import HookStatus, RunStatus
from pyworkflow.storage.records import (
    AppendResult,
    AppendWrite,
    EventRecord,
    HookRecord,
    NewRun,
    RunCursor,
    RunRecord,
    RunSnapshot,
)
from pyworkflow.storage.sql._lease_methods import SqlLeaseMethods
from pyworkflow.storage.sql._owner_methods import SqlOwnerMethods
from pyworkflow.storage.sql._schedule_methods import SqlScheduleMethods
from pyworkflow.storage.sql._script_runner import Script
from pyworkflow.storage.sql._scripts import appends, hooks, retention, runs
from pyworkflow.storage.sql._scripts import snapshots as whole_runs
from pyworkflow.storage.sql._step_methods import SqlStepMethods
from pyworkflow.storage.sql._stream_methods import SqlStreamMethods

__all__ = ["Script", "SqlStorage"]


class SqlStorage(
    SqlLeaseMethods,
    SqlStepMethods,
    SqlOwnerMethods,
    SqlScheduleMethods,
    SqlStreamMethods,
    abc.ABC,
):
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

    # --- hooks ----------------------------------------------------------------------------------

    async def get_hook(self, token_hash: str) -> HookRecord | None:
        """The hook whose token hashes to ``token_hash``, or None."""
        return await self._run(lambda db: hooks.get_hook(db, token_hash), writes=False)

    async def list_hooks(
        self,
        *,
        run_id: str | None = None,
        status: HookStatus | None = None,
        limit: int = 100,
        hook_ids: Collection[str] | None = None,
    ) -> list[HookRecord]:
        """Hooks newest first, of one run and/or in one status; ``hook_ids``: those alone."""
        ids = None if hook_ids is None else list(hook_ids)
        return await self._run(
            lambda db: hooks.list_hooks(
                db, run_id=run_id, status=status, limit=limit, hook_ids=ids
            ),
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

    # --- retention ------------------------------------------------------------------------------

    async def delete_ended_runs(self, *, ended_before: float, limit: int) -> list[str]:
        """Delete up to ``limit`` runs that ended before ``ended_before``, with their rows."""
        return await self._run(
            lambda db: retention.delete_ended_runs(db, ended_before=ended_before, limit=limit),
            writes=True,
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
