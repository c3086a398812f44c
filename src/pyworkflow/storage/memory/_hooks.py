"""The hooks table of MemoryStorage: hook rows by token hash, with their rules.

A hook row is created by its run's append, takes one payload from an outside caller
(``deliver_hook``) or is expired by the run's lease holder (``expire_hook``); whichever comes
first wins and the other sees the row as it stands. Every method validates before it writes, so
a refused call leaves the table as it was. Rows are deep-copied in and out, as in MemoryStorage.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any

from pyworkflow.events import HookStatus
from pyworkflow.exceptions import (
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
    StorageError,
)
from pyworkflow.storage.records import HookRecord, NewHook, RunRecord

__all__ = ["HookTable"]


class HookTable:
    """Hook rows keyed by token hash, with a second key ``(run_id, hook_id)``."""

    def __init__(self) -> None:
        self._rows: dict[str, HookRecord] = {}
        self._tokens: dict[tuple[str, str], str] = {}  # (run id, hook id) -> token hash

    def check_new(self, run_id: str, hooks: Sequence[NewHook]) -> None:
        """Raise StorageError if ``hooks`` would repeat a token hash or a hook id of the run.

        Like a unique index: the engine's tokens are random and its hook ids unique per run,
        so this only fires on a bug.
        """
        tokens: set[str] = set()
        ids: set[str] = set()
        for hook in hooks:
            if hook.token_hash in self._rows or hook.token_hash in tokens:
                raise StorageError(f"a hook with token hash {hook.token_hash[:8]!r}... exists")
            if (run_id, hook.hook_id) in self._tokens or hook.hook_id in ids:
                raise StorageError(f"run {run_id!r} already has a hook {hook.hook_id!r}")
            tokens.add(hook.token_hash)
            ids.add(hook.hook_id)

    def insert(self, run_id: str, hooks: Sequence[NewHook], now: float) -> None:
        """Store ``hooks`` (checked by ``check_new``) as waiting hooks of ``run_id``."""
        for hook in hooks:
            self._rows[hook.token_hash] = HookRecord(
                token_hash=hook.token_hash,
                run_id=run_id,
                hook_id=hook.hook_id,
                name=hook.name,
                status=HookStatus.WAITING,
                payload=None,
                payload_type=hook.payload_type,
                created_at=now,
                expires_at=hook.expires_at,
                received_at=None,
            )
            self._tokens[(run_id, hook.hook_id)] = hook.token_hash

    def get(self, token_hash: str) -> HookRecord | None:
        """The hook, or None."""
        row = self._rows.get(token_hash)
        return None if row is None else copy.deepcopy(row)

    def run_of(self, token_hash: str) -> str | None:
        """The id of the hook's run, or None if there is no such hook."""
        row = self._rows.get(token_hash)
        return None if row is None else row.run_id

    def select(
        self,
        *,
        run_id: str | None,
        status: HookStatus | None,
        limit: int,
        hook_ids: set[str] | None = None,
    ) -> list[HookRecord]:
        """Hooks of ``run_id`` and/or in ``status`` (and among ``hook_ids``), newest first.

        Ties: token hash, descending.
        """
        rows = [
            r
            for r in self._rows.values()
            if (run_id is None or r.run_id == run_id)
            and (status is None or r.status is status)
            and (hook_ids is None or r.hook_id in hook_ids)
        ]
        rows.sort(key=lambda r: (r.created_at, r.token_hash), reverse=True)
        return [copy.deepcopy(r) for r in rows[: max(limit, 0)]]

    def deliver(
        self, token_hash: str, payload: Any, now: float, run: RunRecord | None
    ) -> HookRecord:
        """Store ``payload`` in a waiting hook; ``run`` is its run. The caller signals the run.

        Raises (writing nothing):
            HookNotFoundError: no such hook, or its run has ended.
            HookAlreadyReceivedError: it already has a payload.
            HookExpiredError: it expired, or ``now`` is at or past its ``expires_at``.
        """
        row = self._rows.get(token_hash)
        if row is None or run is None:
            raise HookNotFoundError(token_hash[:8], "no hook has this token")
        if run.status.is_terminal:
            raise HookNotFoundError(
                token_hash[:8], f"its run {run.run_id} has ended ({run.status})"
            )
        if row.status is HookStatus.RECEIVED:
            raise HookAlreadyReceivedError(row.run_id, row.hook_id)
        if row.status is HookStatus.EXPIRED or (
            row.expires_at is not None and now >= row.expires_at
        ):
            raise HookExpiredError(row.run_id, row.hook_id)
        received = dataclasses.replace(
            row, status=HookStatus.RECEIVED, payload=copy.deepcopy(payload), received_at=now
        )
        self._rows[token_hash] = received
        return copy.deepcopy(received)

    def set_payload(self, token_hash: str, payload: Any) -> None:
        """Replace the payload of a hook just delivered (the batch its emit then took)."""
        row = self._rows[token_hash]
        self._rows[token_hash] = dataclasses.replace(row, payload=copy.deepcopy(payload))

    def expire(self, run_id: str, hook_id: str) -> HookRecord:
        """Turn a waiting hook expired; return the hook as it then stands.

        Raises:
            HookNotFoundError: the run has no such hook.
        """
        token_hash = self._tokens.get((run_id, hook_id))
        if token_hash is None:
            raise HookNotFoundError(hook_id[:8], f"run {run_id} has no hook {hook_id!r}")
        row = self._rows[token_hash]
        if row.status is HookStatus.WAITING:
            row = dataclasses.replace(row, status=HookStatus.EXPIRED)
            self._rows[token_hash] = row
        return copy.deepcopy(row)

    def of_run(self, run_id: str) -> list[HookRecord]:
        """The run's hooks, oldest first (ties: token hash)."""
        rows = [r for r in self._rows.values() if r.run_id == run_id]
        rows.sort(key=lambda r: (r.created_at, r.token_hash))
        return [copy.deepcopy(r) for r in rows]

    def put(self, records: Sequence[HookRecord]) -> None:
        """Store hook rows exactly as given (a copied run's: ``write_run_snapshots``)."""
        for record in records:
            self._rows[record.token_hash] = copy.deepcopy(record)
            self._tokens[(record.run_id, record.hook_id)] = record.token_hash

    def delete_run(self, run_id: str) -> None:
        """Drop every hook of ``run_id`` (retention)."""
        for token_hash in [t for t, r in self._rows.items() if r.run_id == run_id]:
            del self._tokens[(run_id, self._rows.pop(token_hash).hook_id)]
