"""The values a write binds: a record's fields laid out as a statement's parameters and rows.

Shared by every SQL dialect (the scripts of ``_scripts/`` and PostgreSQL's composed
statements), so that what a write stores cannot differ between them. JSON values (arguments,
results, errors, payloads) are encoded here, by one encoder (``pyworkflow._json_text.encode``), and
decoded in ``_decoding.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable
from typing import Any

from pyworkflow._json_text import encode
from pyworkflow.events import EventType, HookStatus, RunStatus
from pyworkflow.storage.records import AppendWrite, NewRun, RunRecord, RunSnapshot
from pyworkflow.storage.sql.schema import runs as runs_table

__all__ = [
    "append_params",
    "appended_event_values",
    "claim_params",
    "effect_params",
    "encode",
    "encode_tags",
    "ends_run",
    "event_values",
    "first_event_values",
    "hook_values",
    "new_run_values",
    "plain_append",
    "snapshot_values",
    "spawned_run_values",
]


# The columns of ``runs``: every field of a record but what reading it back adds.
_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunRecord) if f.name != "damage")


def new_run_values(run: NewRun) -> tuple[RunRecord, dict[str, Any]]:
    """The record a new run starts as, and its ``runs`` row keyed by column name."""
    record = run.initial_record()
    values = {name: getattr(record, name) for name in _RUN_FIELDS}
    values["status"] = record.status.value
    values["args"] = encode(run.args)
    values["tags"] = encode_tags(record.tags)
    return record, values


def encode_tags(tags: tuple[str, ...]) -> str | None:
    """The ``runs.tags`` cell: ``",a,b,"`` (tags hold no comma), or NULL for none."""
    return f",{','.join(tags)}," if tags else None


def snapshot_values(
    snapshots: Iterable[RunSnapshot],
) -> tuple[list[dict[str, Any]], ...]:
    """Rows of ``runs``, ``events``, ``hooks`` and ``step_leases`` storing ``snapshots`` as given.

    Each value as the write that made it stores it (a completed run's result and a received
    hook's payload as JSON even when None), so that a copied row reads back equal.
    """
    runs: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    hooks: list[dict[str, Any]] = []
    leases: list[dict[str, Any]] = []
    for snapshot in snapshots:
        record = snapshot.run
        row = {column.name: getattr(record, column.name) for column in runs_table.c}
        row["status"] = record.status.value
        row["args"] = encode(record.args)
        completed = record.status is RunStatus.COMPLETED
        row["result"] = None if record.result is None and not completed else encode(record.result)
        row["error"] = None if record.error is None else encode(record.error)
        row["tags"] = encode_tags(record.tags)
        runs.append(row)
        events.extend(
            {"run_id": e.run_id, "seq": e.seq, "type": e.type.value,
             "payload": encode(e.payload), "created_at": e.created_at}
            for e in snapshot.events
        )  # fmt: skip
        for hook in snapshot.hooks:
            received = hook.status is HookStatus.RECEIVED
            hooks.append(
                {**dataclasses.asdict(hook), "status": hook.status.value,
                 "payload": None if hook.payload is None and not received else encode(hook.payload)}
            )  # fmt: skip
        leases.extend(dataclasses.asdict(lease) for lease in snapshot.step_leases)
    return runs, events, hooks, leases


def append_params(write: AppendWrite) -> dict[str, Any]:
    """The ``b_*`` parameters of ``appends.APPEND`` for a write."""
    terminal = write.status is not None and write.status.is_terminal
    releasing = terminal or write.lease_expires_at is None
    result_json = None
    if write.result is not None or write.status is RunStatus.COMPLETED:
        result_json = encode(write.result)
    return {
        "b_run_id": write.run_id,
        "b_expected": write.expected_seq,
        "b_owner": write.owner,
        "b_last_seq": write.expected_seq + len(write.events),
        "b_status": None if write.status is None else write.status.value,
        "b_now": write.now,
        "b_check_signals": releasing and not terminal,
        "b_signals_seen": write.signals_seen,
        # Terminal runs leave the runnable index: wake_at NULL, lease released.
        "b_wake_at": None if terminal else write.wake_at,
        "b_new_owner": None if releasing else write.owner,
        "b_lease_expires_at": None if releasing else write.lease_expires_at,
        "b_result": result_json,
        "b_error": None if write.error is None else encode(write.error),
        "b_completed_at": write.now if terminal else None,
        "b_progressed": write.progressed,
    }


def event_values(
    run_id: str,
    first_seq: int,
    events: Iterable[tuple[EventType, Any]],
    now: float,
    *,
    encoded: bool = True,
) -> list[dict[str, Any]]:
    """Rows of ``events`` numbered from ``first_seq``.

    Payloads as their JSON text; with ``encoded=False`` as the JSON values themselves, for a
    statement that takes its rows as one JSON document (PostgreSQL's batches).
    """
    encode_payload = encode if encoded else _as_is
    return [
        {"run_id": run_id, "seq": seq, "type": type_.value, "payload": encode_payload(payload),
         "created_at": now}
        for seq, (type_, payload) in enumerate(events, first_seq)
    ]  # fmt: skip


def _as_is(value: Any) -> Any:
    return value


def first_event_values(run: NewRun, *, encoded: bool = True) -> list[dict[str, Any]]:
    """Rows of the events a new run starts with (WORKFLOW_STARTED at seq 1, ...)."""
    started = [(t, p) for _, t, p in run.initial_events()]
    return event_values(run.run_id, 1, started, run.now, encoded=encoded)


def appended_event_values(write: AppendWrite, *, encoded: bool = True) -> list[dict[str, Any]]:
    """Rows of the events an append adds, numbered after the seq it expects."""
    new = [(event.type, event.payload) for event in write.events]
    return event_values(write.run_id, write.expected_seq + 1, new, write.now, encoded=encoded)


def ends_run(write: AppendWrite) -> bool:
    """Whether the append gives the run a terminal status."""
    return write.status is not None and write.status.is_terminal


def plain_append(write: AppendWrite) -> bool:
    """Whether the append only advances its run: no hooks, no new runs, no end.

    Plain appends (nearly all of them) take the fast path: ``appends.APPEND`` and, on
    PostgreSQL, the group commit. The others also write other rows (``effect_params``).
    """
    return not write.hooks and not write.new_runs and not ends_run(write)


def effect_params(write: AppendWrite) -> dict[str, Any]:
    """The ``b_*`` parameters that ``appends.APPEND_WITH_EFFECTS`` adds to ``append_params``.

    ``b_continued_to`` (the new run that continues this one, or None), ``b_cancel_reason``
    (for the children its end cancels), ``b_ends`` and ``b_signal_parent`` (whether the
    end signals the parent: not for a continue-as-new, whose successor takes its place).
    """
    continued = [run.run_id for run in write.new_runs if run.continued_from == write.run_id]
    ends = ends_run(write)
    return {
        "b_continued_to": continued[-1] if continued else None,
        "b_cancel_reason": f"parent run {write.run_id} ended",
        "b_ends": ends,
        "b_signal_parent": ends and write.status is not RunStatus.CONTINUED_AS_NEW,
    }


def hook_values(write: AppendWrite) -> list[dict[str, Any]]:
    """Rows of ``hooks`` for the hooks an append creates: waiting, created at its ``now``."""
    return [
        {"token_hash": hook.token_hash, "run_id": write.run_id, "hook_id": hook.hook_id,
         "name": hook.name, "status": HookStatus.WAITING.value, "payload": None,
         "payload_type": hook.payload_type, "created_at": write.now,
         "expires_at": hook.expires_at, "received_at": None}
        for hook in write.hooks
    ]  # fmt: skip


def spawned_run_values(write: AppendWrite) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of ``runs`` and ``events`` for the runs an append creates (``write.new_runs``).

    Each as ``create_run`` makes it, but unleased and pending, due at its ``now``. A child that
    the same append's end cancels (the append is terminal, the child is its own and of policy
    ``"cancel"``) is stored with that request already made, exactly as ``CANCEL_CHILDREN``
    would leave it: that statement only sees the runs that existed before the append.
    """
    runs: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    ends = ends_run(write)
    for new in write.new_runs:
        unleased = dataclasses.replace(
            new, lease_owner=None, lease_expires_at=None, status=RunStatus.PENDING
        )
        _, values = new_run_values(unleased)
        if ends and new.parent_run_id == write.run_id and new.parent_close_policy != "abandon":
            values.update(
                cancel_requested=True,
                cancel_reason=f"parent run {write.run_id} ended",
                signal_seq=values["signal_seq"] + 1,
                wake_at=write.now,
                updated_at=write.now,
            )
        runs.append(values)
        events.extend(first_event_values(unleased))
    return runs, events


def claim_params(
    *,
    owner: str,
    now: float,
    lease_expires_at: float,
    limit: int,
    workflow_names: Collection[str] | None,
    run_ids: Collection[str] | None,
    queues: Collection[str] | None = None,
) -> dict[str, Any] | None:
    """The parameters of ``claim_runs_statement``, or None when nothing can be claimed."""
    if limit <= 0 or (run_ids is not None and not run_ids):
        return None
    if (workflow_names is not None and not workflow_names) or (queues is not None and not queues):
        return None
    params: dict[str, Any] = {
        "b_now": now,
        "b_limit": limit,
        "b_owner": owner,
        "b_lease_expires_at": lease_expires_at,
    }
    if workflow_names is not None:
        params["b_names"] = list(workflow_names)
    if queues is not None:
        params["b_queues"] = list(queues)
    if run_ids is not None:
        params["b_ids"] = list(run_ids)
    return params
