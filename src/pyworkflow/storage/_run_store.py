"""The run store: runs and their event logs, the core of the Storage protocol.

A part of :class:`~pyworkflow.storage.protocol.Storage` (a base of it), kept apart so that each
module holds one concern. The rules (the contract suite in tests/contract checks each):

- ``append`` is all or nothing and optimistic: it states the ``seq`` it expects to follow and the
  lease owner it holds; a stale one raises ConcurrencyConflictError and writes nothing.
- ``(run_id, seq)`` is unique and gap-free per run.
- Outside writers (``request_cancel``, ``deliver_hook``, a child's end) never append events:
  they set their own columns or rows, bump ``signal_seq`` and make the run due. A lease holder
  that releases a run without having seen the latest ``signal_seq`` leaves it due at once, so
  no signal is lost to a race.
- An append that ends a run (a terminal status) in the same transaction: requests cancellation
  of the run's live children whose ``parent_close_policy`` is ``"cancel"`` (as
  ``request_cancel`` with reason ``"parent run <id> ended"``), and, unless the run ended
  ``continued_as_new``, signals its live parent (``signal_seq + 1``, due at once) so the
  parent's lease holder can log the child's end. Runs in ``new_runs`` are created by the same
  transaction; one whose ``continued_from`` is the appending run sets that run's
  ``continued_to``.
- A run moves between storages whole (``read_run_snapshots``, ``write_run_snapshots``): its
  row with every row that belongs to it, read in one consistent view and written in one
  transaction; what is written reads back equal.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

from pyworkflow.events import RunStatus
from pyworkflow.storage.records import (
    AppendResult,
    AppendWrite,
    EventRecord,
    NewRun,
    RunCursor,
    RunRecord,
    RunSnapshot,
)

__all__ = ["RunStore"]


class RunStore(Protocol):
    """What the engine needs of runs and their logs: create, read, append, cancel, prune, copy."""

    async def create_run(self, run: NewRun) -> tuple[RunRecord, bool]:
        """Insert a run and its WORKFLOW_STARTED event in one transaction.

        Returns the record and True, or, when ``idempotency_key`` is already taken by a run of
        the same workflow, that run and False. The key taken by another workflow raises
        IdempotencyConflictError and writes nothing.
        """

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""

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
        """Runs newest first, filtered; pass the last record's cursor as ``before`` to page on.

        ``parent_run_id`` lists the children of that run (including the runs their
        continue-as-new started, which keep the parent); ``schedule_id`` the runs that
        schedule started; ``run_id_prefix`` keeps the runs whose id starts with it
        (case-sensitive); ``tags``, the runs that carry every one of them.
        """

    async def count_runs(
        self, *, workflow_name: str | None = None, since: float | None = None
    ) -> dict[RunStatus, int]:
        """How many runs are in each status, of one workflow or all: ``{status: count}``.

        ``since`` counts only the runs created at or after it. Statuses with no run are absent.
        """

    async def count_workflow_runs(self, *, since: float | None = None) -> dict[str, int]:
        """How many runs each workflow has: ``{workflow_name: count}`` (created since ``since``).

        Workflows with no run are absent.
        """

    async def count_workflow_statuses(
        self, *, since: float | None = None
    ) -> dict[str, dict[RunStatus, int]]:
        """How many runs each workflow has in each status: ``{workflow_name: {status: count}}``.

        ``since`` counts only the runs created at or after it. Workflows with no run, and
        statuses with none, are absent. One grouped count, however many workflows there are.
        """

    async def load_events(self, run_id: str, after_seq: int = 0) -> list[EventRecord]:
        """Events of a run with ``seq > after_seq``, in seq order."""

    async def append(self, write: AppendWrite) -> AppendResult:
        """Apply one turn atomically; ConcurrencyConflictError if the seq or lease is stale.

        ``result``/``error`` of None leave the stored ones unchanged. An unknown run raises
        RunNotFoundError.

        Concurrent appends of different runs may share one database transaction (group commit)
        but each succeeds or fails on its own.
        """

    async def request_cancel(self, run_id: str, *, now: float, reason: str | None) -> bool:
        """Record a cancel request and make the run due; False if the run is unknown or ended."""

    async def reopen_failed_run(
        self, run_id: str, *, now: float, payload: dict[str, Any]
    ) -> RunRecord:
        """Append WORKFLOW_RESUMED to a failed run and make it pending and due, atomically.

        Raises RunNotFoundError, or InvalidRunStateError if the run has not failed.
        """

    async def delete_ended_runs(self, *, ended_before: float, limit: int) -> list[str]:
        """Delete up to ``limit`` ended runs with ``completed_at < ended_before``, and their rows.

        Retention: a run in a terminal status goes with its events (and every other row that
        belongs to it) in one transaction per call; a live run is never touched, nor a failed
        run that ``resume`` reopened meanwhile. Which qualifying runs go first is unspecified;
        call again until fewer than ``limit`` come back. A deleted run's idempotency key is
        free again. Returns the ids of the runs deleted (empty when ``limit <= 0``).
        """

    async def read_run_snapshots(self, run_ids: Collection[str]) -> list[RunSnapshot]:
        """Each run whole (row, events, hooks, step leases), all read in one consistent view.

        For copying runs to another storage (``pyworkflow.storage.copy_runs``): no write that
        commits meanwhile shows in part, so a run's log ends at its row's ``last_seq`` and its
        hooks are the ones its log created. In the order of ``run_ids``, each once; an unknown
        id is left out.

        Raises:
            CorruptRecordError: an event or hook of one of the runs cannot be read back (a
                damaged run row reads with ``damage`` set, as ``get_run`` returns it).
        """

    async def write_run_snapshots(
        self, snapshots: Sequence[RunSnapshot], *, replacing: Sequence[RunRecord] = ()
    ) -> None:
        """Store runs whole, exactly as given, in one transaction: all of them or nothing.

        First each run of ``replacing`` goes, with every row of it; it must still be stored
        exactly as that record says (as a snapshot of it wrote it), so a copy can take back or
        refresh what it wrote but never a run that moved on here. Then each snapshot is
        inserted as it is: leases, wake-up times and signals included (a copy clears leases
        before it writes, ``copy_runs``); no notification is sent and no run is signalled.

        Raises (writing nothing):
            CopyConflictError: a snapshot's run id, idempotency key or hook token hash is
                taken here (by a run not being replaced), or a run of ``replacing`` is gone
                or changed; the error names the runs.
        """
