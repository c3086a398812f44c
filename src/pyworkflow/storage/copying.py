"""Copying runs from one storage to another: embed with SQLite, move to PostgreSQL later.

:func:`copy_runs` moves every run (its row, event log, hooks, step leases and the stream runs it
drives, with their subscriptions, signals and deliveries) through the
Storage protocol's two whole-run methods, so any backend copies to any other: SQLite to
PostgreSQL for production, ``memory://`` to SQLite to keep a test's history. What it keeps:

- **whole runs**: each run is read in one consistent view and written in one transaction, a
  batch at a time; a failure takes back what the copy wrote, so the destination ends with
  every run or with none of them.
- **a destination of its own**: one that already holds any of the runs (by id) is refused
  before anything is written (:class:`~pyworkflow.exceptions.CopyConflictError` names them).
- **runs that move meanwhile**: after writing, the copy reads the source again; a run whose
  log grew or whose row changed is copied again (replacing the older copy), and runs started
  meanwhile are copied too. One still moving after ``rounds`` rounds fails the copy with
  :class:`~pyworkflow.exceptions.RunsChangedDuringCopyError`, naming it. Stop the source's
  workers first and nothing moves.
- **runs that continue on the destination**: timers keep their absolute wake times, hooks
  their token hashes (``resume_hook`` with a token issued before the copy works), and parent,
  child and continue-as-new links their run ids. Leases do not survive: a lease names a
  process that writes to the *source*, and means nothing to the destination, so a copied run
  is free to claim at once (a run that was leased is due since its last change; its replay
  finds where it was) and a step lease keeps only its attempt and delivery count. A stream
  run keeps its cursors, results, checkpoints and signal numbers, and its driver's armed
  waiter, so the next signal emitted on the destination wakes the driver there.

Example:
    >>> from pyworkflow.storage import copy_runs
    >>> report = await copy_runs("sqlite:///app.db", "postgresql://app@db/app")  # doctest: +SKIP
    >>> report.runs  # doctest: +SKIP
    1042
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack

from pyworkflow.exceptions import CopyConflictError, RunsChangedDuringCopyError
from pyworkflow.storage._backends import backend_for
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import RunCursor, RunRecord, RunSnapshot

__all__ = ["CopyReport", "copy_runs", "for_destination"]

Progress = Callable[[int, int], None]
"""``progress(runs_copied, runs_total)``, called after each batch the copy writes."""

_PAGE = 500


@dataclasses.dataclass(frozen=True)
class CopyReport:
    """What :func:`copy_runs` copied.

    Attributes:
        source: the source's URL (password masked).
        destination: the destination's URL (password masked).
        runs: runs copied.
        events: events copied, over all runs.
        hooks: hooks copied.
        step_leases: step lease rows copied.
        leases_dropped: run and step leases held in the source that the copy left behind.
        recopied: runs read and written again because they changed during the copy.
        seconds: how long the copy took.
        stream_runs: stream runs copied (with the runs driving them).
        signals: their signals.
    """

    source: str
    destination: str
    runs: int
    events: int
    hooks: int
    step_leases: int
    leases_dropped: int
    recopied: tuple[str, ...]
    seconds: float
    stream_runs: int = 0
    signals: int = 0


def for_destination(snapshot: RunSnapshot) -> RunSnapshot:
    """The snapshot as the destination stores it: no lease of the source survives.

    A leased live run becomes free and due since its last change (``updated_at``, or its
    earlier wake-up time): its holder writes to the source, not here, so the destination's
    workers take the run at once and replay it, and its timers, stored as absolute times in
    its log, wake when they would have. (Its last change, not the copy's clock: that is the
    source's time, which a test's virtual clock keeps too.) Without an owner there is none to
    lose, so the claim counts no recovery. A step lease keeps its attempt and delivery count
    (the bound on a step that kills its workers). Everything else is kept as it is.
    """
    run = snapshot.run
    if run.lease_owner is not None or run.lease_expires_at is not None:
        due = run.updated_at if run.wake_at is None else min(run.wake_at, run.updated_at)
        wake_at = None if run.status.is_terminal else due
        run = dataclasses.replace(run, lease_owner=None, lease_expires_at=None, wake_at=wake_at)
    leases = tuple(
        dataclasses.replace(lease, owner=None, lease_expires_at=None)
        for lease in snapshot.step_leases
    )
    return dataclasses.replace(snapshot, run=run, step_leases=leases)


def _dropped(snapshot: RunSnapshot) -> int:
    """How many leases of the snapshot ``for_destination`` drops."""
    held = [snapshot.run.lease_owner, *(lease.owner for lease in snapshot.step_leases)]
    return sum(owner is not None for owner in held)


async def copy_runs(
    source: Storage | str,
    destination: Storage | str,
    *,
    batch_size: int = 200,
    rounds: int = 3,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy every run of ``source``, whole, into ``destination``; see the module docstring.

    Args:
        source: a storage or a URL (``sqlite:///app.db``, ``memory://`` is only useful as an
            object: ``WorkflowEnvironment.storage``). A storage given as an object is opened
            (opening is idempotent) and left open; one built from a URL is closed after.
        destination: the same, where the runs go. It must hold none of them.
        batch_size: runs read and written per transaction.
        rounds: how often runs that changed during the copy are copied again before the copy
            gives up on them.
        progress: called with ``(runs copied, runs in all)`` after each batch.

    Returns:
        What was copied.

    Raises:
        CopyConflictError: the destination already holds some of the runs (their ids, keys or
            hook tokens); nothing was written.
        RunsChangedDuringCopyError: runs kept changing in the source; nothing was copied.
        CorruptRecordError: a run of the source cannot be read back; nothing was copied.
    """
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        src = await _opened(source, stack)
        dst = await _opened(destination, stack)
        copy = _Copy(src, dst, batch_size=max(1, batch_size), progress=progress)
        await copy.run(rounds)
    return copy.report(time.monotonic() - started)


async def _opened(storage: Storage | str, stack: AsyncExitStack) -> Storage:
    if isinstance(storage, str):
        storage = backend_for(storage).from_url(storage)
        stack.push_async_callback(storage.close)
    await storage.open()
    return storage


async def _all_run_ids(storage: Storage) -> list[str]:
    """The ids of every run of ``storage``, oldest first (the order a copy writes them in)."""
    ids: list[str] = []
    before: RunCursor | None = None
    while True:
        page = await storage.list_runs(limit=_PAGE, before=before)
        ids.extend(r.run_id for r in page)
        if len(page) < _PAGE:
            return ids[::-1]
        before = RunCursor(page[-1].created_at, page[-1].run_id)


class _Copy:
    """One copy under way: what it wrote where, so it can check, refresh or take it back."""

    def __init__(
        self,
        src: Storage,
        dst: Storage,
        *,
        batch_size: int,
        progress: Progress | None,
    ) -> None:
        self.src, self.dst, self.batch_size = src, dst, batch_size
        self.progress = progress
        self.read: dict[str, RunSnapshot] = {}  # run id -> the source's run as copied
        self.written: dict[str, RunSnapshot] = {}  # run id -> what the destination holds
        self.recopied: dict[str, None] = {}
        self.total = 0

    def _batches(self, ids: Sequence[str]) -> Iterator[list[str]]:
        for start in range(0, len(ids), self.batch_size):
            yield list(ids[start : start + self.batch_size])

    async def run(self, rounds: int) -> None:
        """Copy, then copy again what moved, until nothing moves; take it all back on failure."""
        pending = await _all_run_ids(self.src)
        self.total = len(pending)
        await self._refuse_taken(pending)
        try:
            for _ in range(max(1, rounds)):
                for batch in self._batches(pending):
                    await self._copy(batch)
                pending = await self._moved()
                if not pending:
                    return
                self.recopied.update(dict.fromkeys(i for i in pending if i in self.read))
                self.total = len(self.read) + len([i for i in pending if i not in self.read])
            raise RunsChangedDuringCopyError(self.src.url, pending)
        except BaseException as failure:
            try:
                await self._take_back()
            except Exception as undo:  # the failure stays what the caller sees
                failure.add_note(
                    f"the copy could not take back the runs it wrote to {self.dst.url}: {undo}"
                )
            raise

    async def _refuse_taken(self, ids: list[str]) -> None:
        """Refuse a destination holding any of the runs, before anything is written."""
        taken: list[str] = []
        for batch in self._batches(ids):
            taken.extend(s.run.run_id for s in await self.dst.read_run_snapshots(batch))
        if taken:
            raise CopyConflictError(
                self.dst.url, taken, "already exist there; copy into a database of its own"
            )

    async def _copy(self, batch: list[str]) -> None:
        """Read a batch of runs whole and write them whole (replacing older copies of them)."""
        snapshots = await self.src.read_run_snapshots(batch)
        handed = self._handed_on(snapshots, batch)
        if handed:
            # A stream run this copy wrote with an earlier batch's run went on to a run of this
            # batch (its driver continued as new): that earlier run is copied again here, in
            # the same write, which frees the stream run's id for its new driver.
            batch = [*batch, *handed]
            snapshots = await self.src.read_run_snapshots(batch)
        for snapshot in snapshots:
            if snapshot.run.damage is not None:
                raise snapshot.run.damage
        found = {s.run.run_id for s in snapshots}
        fresh = [for_destination(s) for s in snapshots]
        # A run deleted from the source since (retention) goes from the destination too.
        replacing = [self.written[i].run for i in batch if i in self.written]
        await self.dst.write_run_snapshots(fresh, replacing=replacing)
        for run_id in batch:
            if run_id not in found:
                self.read.pop(run_id, None)
                self.written.pop(run_id, None)
        self.read.update((s.run.run_id, s) for s in snapshots)
        self.written.update((s.run.run_id, s) for s in fresh)
        if self.progress is not None:
            self.progress(len(self.written), max(self.total, len(self.written)))

    def _handed_on(self, snapshots: Sequence[RunSnapshot], batch: list[str]) -> list[str]:
        """Runs outside ``batch`` whose copy holds a stream run a snapshot here holds."""
        wanted = {st.record.stream_run_id for s in snapshots for st in s.streams}
        if not wanted:
            return []
        holders = (
            run_id
            for run_id, written in self.written.items()
            for st in written.streams
            if st.record.stream_run_id in wanted
        )
        return list(dict.fromkeys(run_id for run_id in holders if run_id not in batch))

    async def _moved(self) -> list[str]:
        """The runs whose copy is no longer what the source holds, and runs it gained.

        Compared as the destination stores them: a lease renewed on the source (its worker
        still up, idle) changes nothing the copy keeps.
        """
        ids = await _all_run_ids(self.src)
        moved = [run_id for run_id in ids if run_id not in self.read]
        gone = set(self.read) - set(ids)
        for batch in self._batches([i for i in self.read if i not in gone]):
            now = {s.run.run_id: s for s in await self.src.read_run_snapshots(batch)}
            moved.extend(
                i for i in batch if i not in now or for_destination(now[i]) != self.written[i]
            )
        return [*moved, *sorted(gone)]

    async def _take_back(self) -> None:
        """Remove from the destination every run this copy wrote (a failed copy leaves none)."""
        runs: list[RunRecord] = [s.run for s in self.written.values()]
        for start in range(0, len(runs), self.batch_size):
            await self.dst.write_run_snapshots([], replacing=runs[start : start + self.batch_size])
        self.written.clear()

    def report(self, seconds: float) -> CopyReport:
        """The report of a finished copy."""
        copied = self.read.values()
        return CopyReport(
            source=self.src.url,
            destination=self.dst.url,
            runs=len(self.written),
            events=sum(len(s.events) for s in copied),
            hooks=sum(len(s.hooks) for s in copied),
            step_leases=sum(len(s.step_leases) for s in copied),
            leases_dropped=sum(_dropped(s) for s in copied),
            recopied=tuple(self.recopied),
            seconds=seconds,
            stream_runs=sum(len(s.streams) for s in copied),
            signals=sum(len(st.signals) for s in copied for st in s.streams),
        )
