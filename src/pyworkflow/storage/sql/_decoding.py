"""Reading rows back as records: the one place a stored cell is decoded, and damage is named.

Shared by every SQL dialect (the scripts of ``_scripts/``, PostgreSQL's batches). A JSON cell
that no longer parses (a flipped byte, a torn write, a hand edit) or does not have the shape the
engine needs becomes a :class:`~pyworkflow.exceptions.CorruptRecordError` naming the table, the
run and the column, through :func:`decode_json`: never a bare ``JSONDecodeError``.

What happens then depends on the row:

- A row of ``runs`` still reads: a listing or a claim returns many runs at once (a claim has
  already taken their leases), and one damaged row must not lose the others. The record gets
  ``damage`` set to the error and the bad field a stand-in (None; 0.0 for a creation or update
  time; ``failed`` for a status), so the driver fails the run with that reason and a listing
  shows what is damaged.
- A row of ``events`` or ``hooks`` raises: a run whose log or hook cannot be read cannot be
  replayed, and its driver fails it.

The hot paths (claims, a run's log on every resume) decode as before inside one ``try``, which
costs nothing while the cells are sound; only a row that fails is read again cell by cell to
name the damage. Rows are always fully fetched before they are decoded, so an error leaves no
statement running on the connection.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pyworkflow.events import EventType, HookStatus, RunStatus
from pyworkflow.exceptions import CorruptRecordError
from pyworkflow.storage.records import EventRecord, HookRecord, RunRecord, StepLease
from pyworkflow.storage.sql.schema import runs

__all__ = [
    "RUN_COLUMN",
    "claimed_runs",
    "decode_json",
    "earliest_wake",
    "events_from_rows",
    "hook_from_row",
    "run_from_row",
    "step_lease_from_row",
    "taken_ids",
]

RUN_COLUMN = {column.name: i for i, column in enumerate(runs.c)}
"""Where each column of ``runs`` is in a row of all of them (rows are read by position)."""

_T = TypeVar("_T")

_loads = json.loads
_EVENT_TYPES = {t.value: t for t in EventType}
# Errors of a cell that cannot be read: json.loads (ValueError), a cell of the wrong SQL type
# (TypeError: json.loads of a number), an unknown status or event type (ValueError, KeyError).
_UNREADABLE = (ValueError, TypeError, KeyError)


def decode_json(text: Any, *, table: str, run_id: str, column: str, seq: int | None = None) -> Any:
    """The JSON value stored in one cell.

    Args:
        text: the cell as the driver returned it.
        table: the cell's table, for the error.
        run_id: the run its row belongs to.
        column: its column.
        seq: the event's ``seq``, for a cell of ``events``.

    Raises:
        CorruptRecordError: the cell is not JSON text.
    """
    try:
        return _loads(text)
    except _UNREADABLE as exc:
        raise CorruptRecordError(table, run_id, column, text, _why(exc), seq=seq) from exc


def _why(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc})"
    if isinstance(exc, TypeError):
        return f"not JSON text ({exc})"
    if isinstance(exc, KeyError):
        return f"unknown value {exc.args[0]!r}"
    return str(exc)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def run_from_row(row: Sequence[Any]) -> RunRecord:
    """A row of ``runs`` (all columns, in table order) as a record; damaged cells named.

    Positional, so that SQLAlchemy rows, named tuples and asyncpg Records all serve. Never
    raises for a damaged cell: the record's ``damage`` says which (see the module docstring).
    """
    (
        run_id, workflow_name, status, args, result, error, idempotency_key, parent_run_id,
        created_at, updated_at, completed_at, wake_at, lease_owner, lease_expires_at,
        recovery_count, last_seq, signal_seq, cancel_requested, cancel_reason,
        parent_close_policy, continued_from, continued_to, queue, schedule_id, schedule_slot_at,
        tags,
    ) = row  # fmt: skip
    try:
        record = RunRecord(
            run_id=run_id,
            workflow_name=workflow_name,
            status=RunStatus(status),
            args=_loads(args),
            result=None if result is None else _loads(result),
            error=None if error is None else _loads(error),
            idempotency_key=idempotency_key,
            parent_run_id=parent_run_id,
            # float(): SQLite's RETURNING hands back REAL values before column affinity, so an
            # integral time would come back as an int.
            created_at=float(created_at),
            updated_at=float(updated_at),
            completed_at=_float_or_none(completed_at),
            wake_at=_float_or_none(wake_at),
            lease_owner=lease_owner,
            lease_expires_at=_float_or_none(lease_expires_at),
            recovery_count=recovery_count,
            last_seq=last_seq,
            signal_seq=signal_seq,
            cancel_requested=bool(cancel_requested),
            cancel_reason=cancel_reason,
            parent_close_policy=parent_close_policy,
            continued_from=continued_from,
            continued_to=continued_to,
            queue=queue,
            schedule_id=schedule_id,
            schedule_slot_at=_float_or_none(schedule_slot_at),
            tags=_tags(tags),
        )
    except _UNREADABLE:
        return _damaged_run(row)
    if record.error is not None and type(record.error) is not dict:
        return _damaged_run(row)  # only failed runs have one: no cost to the others
    return record


class _Cells:
    """Reads a damaged row of ``runs`` cell by cell; the first cell that fails is its damage."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.damage: CorruptRecordError | None = None

    def read(self, column: str, value: Any, read: Callable[[Any], _T], stand_in: _T) -> _T:
        try:
            return read(value)
        except CorruptRecordError as exc:
            self.damage = self.damage or exc
        except _UNREADABLE as exc:
            self.damage = self.damage or CorruptRecordError(
                "runs", self.run_id, column, value, _why(exc)
            )
        return stand_in

    def json(self, column: str, value: Any) -> Any:
        if value is None:
            return None
        return self.read(column, value, self._decoder(column), None)

    def _decoder(self, column: str) -> Callable[[Any], Any]:
        def decode(text: Any) -> Any:
            value = decode_json(text, table="runs", run_id=self.run_id, column=column)
            if column == "error" and type(value) is not dict:
                # The engine and every caller read an error's "type" and "message".
                raise CorruptRecordError("runs", self.run_id, column, text, "not a JSON object")
            return value

        return decode


def _tags(cell: str | None) -> tuple[str, ...]:
    """The tags of a ``runs.tags`` cell (``",a,b,"``, ``_params.encode_tags``)."""
    return tuple(t for t in cell.split(",") if t) if cell else ()


def _damaged_run(row: Sequence[Any]) -> RunRecord:
    (
        run_id, workflow_name, status, args, result, error, idempotency_key, parent_run_id,
        created_at, updated_at, completed_at, wake_at, lease_owner, lease_expires_at,
        recovery_count, last_seq, signal_seq, cancel_requested, cancel_reason,
        parent_close_policy, continued_from, continued_to, queue, schedule_id, schedule_slot_at,
        tags,
    ) = row  # fmt: skip
    cells = _Cells(run_id)
    return RunRecord(
        run_id=run_id,
        workflow_name=workflow_name,
        status=cells.read("status", status, RunStatus, RunStatus.FAILED),
        args=cells.json("args", args),
        result=cells.json("result", result),
        error=cells.json("error", error),
        idempotency_key=idempotency_key,
        parent_run_id=parent_run_id,
        created_at=cells.read("created_at", created_at, float, 0.0),
        updated_at=cells.read("updated_at", updated_at, float, 0.0),
        completed_at=cells.read("completed_at", completed_at, _float_or_none, None),
        wake_at=cells.read("wake_at", wake_at, _float_or_none, None),
        lease_owner=lease_owner,
        lease_expires_at=cells.read("lease_expires_at", lease_expires_at, _float_or_none, None),
        recovery_count=recovery_count,
        last_seq=last_seq,
        signal_seq=signal_seq,
        cancel_requested=bool(cancel_requested),
        cancel_reason=cancel_reason,
        parent_close_policy=parent_close_policy,
        continued_from=continued_from,
        continued_to=continued_to,
        queue=queue,
        schedule_id=schedule_id,
        schedule_slot_at=_float_or_none(schedule_slot_at),
        tags=_tags(tags) if isinstance(tags, str | None) else (),
        damage=cells.damage,
    )


def hook_from_row(row: Sequence[Any]) -> HookRecord:
    """A row of ``hooks`` (all columns, in table order) as a record.

    Raises:
        CorruptRecordError: a cell cannot be read (its payload is not JSON ...).
    """
    (
        token_hash, run_id, hook_id, name, status, payload, payload_type, created_at,
        expires_at, received_at,
    ) = row  # fmt: skip
    try:
        return HookRecord(
            token_hash=token_hash,
            run_id=run_id,
            hook_id=hook_id,
            name=name,
            status=HookStatus(status),
            payload=None if payload is None else _loads(payload),
            payload_type=payload_type,
            created_at=float(created_at),
            expires_at=_float_or_none(expires_at),
            received_at=_float_or_none(received_at),
        )
    except _UNREADABLE:
        pass
    # Cold: find the cell that failed.
    if payload is not None:
        decode_json(payload, table="hooks", run_id=run_id, column="payload")
    cells: list[tuple[str, Any, Callable[[Any], object]]] = [
        ("status", status, HookStatus),
        ("created_at", created_at, float),
        ("expires_at", expires_at, _float_or_none),
        ("received_at", received_at, _float_or_none),
    ]
    for column, value, read in cells:
        _cell("hooks", run_id, column, value, read)
    raise AssertionError("unreachable: a cell of the hook failed above")  # pragma: no cover


def _cell(
    table: str,
    run_id: str,
    column: str,
    value: Any,
    read: Callable[[Any], _T],
    seq: int | None = None,
) -> _T:
    """``read(value)``, or the error naming the cell."""
    try:
        return read(value)
    except _UNREADABLE as exc:
        raise CorruptRecordError(table, run_id, column, value, _why(exc), seq=seq) from exc


def events_from_rows(run_id: str, rows: Sequence[Sequence[Any]]) -> list[EventRecord]:
    """``LOAD_EVENTS`` rows (seq, type, payload, created_at) as records.

    Raises:
        CorruptRecordError: an event's payload is not a JSON object, or its type or time is
            not one (the first such event, by ``seq``).
    """
    types = _EVENT_TYPES
    # Hot on every resume (B3): plain tuples, and the enum looked up in a dict.
    try:
        events = [
            EventRecord(run_id, seq, types[type_], _loads(payload), float(created_at))
            for seq, type_, payload, created_at in rows
        ]
    except _UNREADABLE:
        events = [_event(run_id, row) for row in rows]  # raises, naming the event
    for event in events:
        # Every payload the engine writes is an object, and replay reads its keys.
        if type(event.payload) is not dict:
            raise CorruptRecordError(
                "events",
                run_id,
                "payload",
                json.dumps(event.payload),
                "not a JSON object",
                seq=event.seq,
            )
    return events


def _event(run_id: str, row: Sequence[Any]) -> EventRecord:
    """One event, read cell by cell to name the one that fails."""
    seq, type_, payload, created_at = row
    value = decode_json(payload, table="events", run_id=run_id, column="payload", seq=seq)
    kind = _cell("events", run_id, "type", type_, _EVENT_TYPES.__getitem__, seq)
    moment = _cell("events", run_id, "created_at", created_at, float, seq)
    return EventRecord(run_id, seq, kind, value, moment)


_RUN_COLUMNS = len(RUN_COLUMN)


def claimed_runs(
    rows: Iterable[Sequence[Any]], previous_owners: Mapping[str, str | None] | None = None
) -> list[RunRecord]:
    """Claimed rows as records, earliest ``wake_at`` first (RETURNING promises no order).

    Each record's ``previous_owner`` comes from ``previous_owners`` (by run id) or, without
    it, from the column that follows the run's own in each row (PostgreSQL's one-statement claim).
    """
    records = []
    for row in rows:
        record = run_from_row(row[:_RUN_COLUMNS])
        if previous_owners is None:
            previous = row[_RUN_COLUMNS]
        else:
            previous = previous_owners.get(record.run_id)
        if previous is not None:  # a take-over: rare, so the copy costs nothing in bulk
            record = dataclasses.replace(record, previous_owner=previous)
        records.append(record)
    records.sort(key=lambda r: (r.wake_at or 0.0, r.run_id))
    return records


def taken_ids(rows: Iterable[Sequence[Any]]) -> list[str]:
    """The ids of ``(run_id, wake_at)`` rows (``take_due_runs``), earliest ``wake_at`` first."""
    return [run_id for run_id, _ in sorted(rows, key=lambda row: (float(row[1]), row[0]))]


def step_lease_from_row(row: Sequence[Any]) -> StepLease:
    """A row of ``step_leases`` (all columns, in table order) as a record."""
    run_id, step_id, attempt, owner, lease_expires_at, deliveries, queue, offered_at = row
    return StepLease(
        run_id=run_id,
        step_id=step_id,
        attempt=int(attempt),
        owner=owner,
        lease_expires_at=None if lease_expires_at is None else float(lease_expires_at),
        deliveries=int(deliveries),
        queue=queue,
        offered_at=None if offered_at is None else float(offered_at),
    )


def earliest_wake(first_free: Any, first_leased: Any) -> float | None:
    """The answer of ``next_wake_at`` from its two queries' results."""
    times = [float(t) for t in (first_free, first_leased) if t is not None]
    return min(times, default=None)
