"""The snapshot methods of MemoryStorage: reading runs whole and storing them whole.

A part of :class:`~pyworkflow.storage.memory.MemoryStorage` (a base of it): how a run moves to
or from another storage (``pyworkflow.storage.copy_runs``), each of its rows exactly as it is.
The rules are ``Storage.read_run_snapshots`` and ``Storage.write_run_snapshots``, written as
plainly as possible: every check comes before the first write, so a refused call changes
nothing; everything runs without an await, so a read sees one state.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from pyworkflow.exceptions import CopyConflictError
from pyworkflow.storage.memory._copies import copy_tree
from pyworkflow.storage.memory._hooks import HookTable
from pyworkflow.storage.memory._steps import StepLeaseTable
from pyworkflow.storage.memory._stream_rows import MemoryStreamRows
from pyworkflow.storage.records import EventRecord, RunRecord, RunSnapshot

__all__ = ["MemorySnapshotMethods"]


class MemorySnapshotMethods(MemoryStreamRows):
    """The snapshot methods of the Storage protocol in memory (a base of MemoryStorage)."""

    url: str
    _runs: dict[str, RunRecord]
    _events: dict[str, list[EventRecord]]
    _keys: dict[str, str]
    _children: dict[str, set[str]]
    _hooks: HookTable
    _steps: StepLeaseTable

    def _forget(self, run_id: str) -> None:
        raise NotImplementedError  # MemoryStorage's

    def _insert(self, record: RunRecord) -> None:
        raise NotImplementedError  # MemoryStorage's

    async def read_run_snapshots(self, run_ids: Collection[str]) -> list[RunSnapshot]:
        """The known runs of ``run_ids`` whole, in order; see ``Storage.read_run_snapshots``."""
        return [
            RunSnapshot(
                run=copy_tree(self._runs[run_id]),
                events=tuple(copy_tree(e) for e in self._events[run_id]),
                hooks=tuple(self._hooks.of_run(run_id)),
                step_leases=tuple(self._steps.of_run(run_id)),
                streams=self._stream_snapshots(run_id),
            )
            for run_id in dict.fromkeys(run_ids)
            if run_id in self._runs
        ]

    async def write_run_snapshots(
        self, snapshots: Sequence[RunSnapshot], *, replacing: Sequence[RunRecord] = ()
    ) -> None:
        """Drop the runs of ``replacing``, then store ``snapshots``; all or nothing.

        Raises:
            CopyConflictError: see ``Storage.write_run_snapshots``; nothing is written.
        """
        moved = [
            r.run_id
            for r in replacing
            if self._runs.get(r.run_id) != r  # gone, or moved on since the copy wrote it
        ]
        if moved:
            raise CopyConflictError(
                self.url,
                moved,
                "changed here since the copy wrote them (a worker here drives them)",
            )
        freed = {r.run_id for r in replacing}
        self._check_free(snapshots, freed)
        for run_id in freed:
            self._forget(run_id)
        for snapshot in snapshots:
            record = copy_tree(snapshot.run)
            self._insert(record)
            self._events[record.run_id] = [copy_tree(e) for e in snapshot.events]
            if record.idempotency_key is not None:
                self._keys[record.idempotency_key] = record.run_id
            self._hooks.put(snapshot.hooks)
            self._steps.put(snapshot.step_leases)
            self._put_streams(snapshot.streams)

    def _check_free(self, snapshots: Sequence[RunSnapshot], freed: set[str]) -> None:
        """Raise CopyConflictError if a snapshot's id, key or token hash is taken here."""
        ids = [s.run.run_id for s in snapshots if s.run.run_id in self._runs]
        ids = [run_id for run_id in ids if run_id not in freed]
        if ids:
            raise CopyConflictError(self.url, ids, "already exist there")
        keys = [
            s.run.run_id
            for s in snapshots
            if s.run.idempotency_key is not None
            and self._keys.get(s.run.idempotency_key, s.run.run_id) not in freed | {s.run.run_id}
        ]
        if keys:
            raise CopyConflictError(
                self.url, keys, "have idempotency keys that runs there already use"
            )
        tokens = [
            s.run.run_id
            for s in snapshots
            for hook in s.hooks
            if (self._hooks.run_of(hook.token_hash) or s.run.run_id) not in freed | {s.run.run_id}
        ]
        if tokens:
            raise CopyConflictError(
                self.url,
                list(dict.fromkeys(tokens)),
                "have hook tokens that runs there already use",
            )
        streams = [s.run.run_id for s in snapshots if self._streams_taken(s.streams, freed)]
        if streams:
            raise CopyConflictError(
                self.url, streams, "drive stream runs whose ids stream runs there already use"
            )
