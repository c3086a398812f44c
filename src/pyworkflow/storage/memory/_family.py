"""How one run's append touches its relatives in MemoryStorage: new runs, children, parent.

An append may create runs (children, or the run a continue-as-new starts) and, when it ends its
run, requests cancellation of the run's live ``"cancel"``-policy children and signals its live
parent (DESIGN §7: a child's end is an outside write to the parent, never an event in its log).
These functions compute the rows such an append writes without writing them, so that
MemoryStorage can validate everything first and then store it all at once (DESIGN §2.4).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from pyworkflow.events import RunStatus
from pyworkflow.exceptions import StorageError
from pyworkflow.storage.records import AppendWrite, EventRecord, NewRun, RunRecord

__all__ = ["created_runs", "ending_updates", "signalled"]


def signalled(record: RunRecord, now: float, **changes: Any) -> RunRecord:
    """``record`` after an outside write: ``changes``, ``signal_seq + 1`` and due at ``now``.

    A run already asked to cancel keeps the first request's reason.
    """
    if record.cancel_requested and "cancel_reason" in changes:
        changes["cancel_reason"] = record.cancel_reason
    return dataclasses.replace(
        record, signal_seq=record.signal_seq + 1, wake_at=now, updated_at=now, **changes
    )


def created_runs(
    write: AppendWrite, runs: Mapping[str, RunRecord], keys: Mapping[str, str]
) -> list[tuple[RunRecord, list[EventRecord]]]:
    """The rows of ``write.new_runs``: pending, unleased and due at their ``now``.

    Raises:
        StorageError: a run id or idempotency key is already taken (the engine never asks
            for that: its ids are fresh and its new runs carry no key).
    """
    created: list[tuple[RunRecord, list[EventRecord]]] = []
    seen_ids: set[str] = set()
    seen_keys: set[str] = set()
    for new in write.new_runs:
        if new.run_id in runs or new.run_id in seen_ids:
            raise StorageError(f"a run with id {new.run_id!r} already exists")
        key = new.idempotency_key
        if key is not None and (key in keys or key in seen_keys):
            raise StorageError(f"idempotency key {key!r} is already taken")
        seen_ids.add(new.run_id)
        if key is not None:
            seen_keys.add(key)
        created.append(_rows_of(new))
    return created


def _rows_of(new: NewRun) -> tuple[RunRecord, list[EventRecord]]:
    """The run row and first events of one new run, leased to nobody."""
    unleased = dataclasses.replace(
        new, lease_owner=None, lease_expires_at=None, status=RunStatus.PENDING
    )
    record = dataclasses.replace(unleased.initial_record(), args=copy.deepcopy(new.args))
    events = [
        EventRecord(new.run_id, seq, type_, copy.deepcopy(payload), new.now)
        for seq, type_, payload in unleased.initial_events()
    ]
    return record, events


def ending_updates(
    runs: Mapping[str, RunRecord], children: Iterable[RunRecord], ended: RunRecord, now: float
) -> dict[str, RunRecord]:
    """What the end of ``ended`` (its new, terminal row) does to the other runs, by run id.

    ``children`` are the rows of the runs whose parent it is.

    Its live children with policy ``"cancel"`` (or none) get a cancel request, as
    ``request_cancel`` would make; ``"abandon"`` children and ended ones are left alone. Unless
    it continued as new (its successor takes its place under the parent), its live parent is
    signalled, so the parent's lease holder logs the child's end.
    """
    updates: dict[str, RunRecord] = {}
    for child in children:
        if not child.status.is_terminal and child.parent_close_policy in (None, "cancel"):
            updates[child.run_id] = signalled(
                child,
                now,
                cancel_requested=True,
                cancel_reason=f"parent run {ended.run_id} ended",
            )
    parent = None if ended.parent_run_id is None else runs.get(ended.parent_run_id)
    if (
        parent is not None
        and not parent.status.is_terminal
        and ended.status is not RunStatus.CONTINUED_AS_NEW
    ):
        updates[parent.run_id] = signalled(updates.get(parent.run_id, parent), now)
    return updates
