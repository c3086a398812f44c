"""The scripts of schedules: creating, reading, listing, versioned updates, and firing one.

:func:`fire_schedule` is the one that matters: the schedule's new state (checked against the
version its scheduler read), the runs of its slots and its cancel requests are written by one
script, which ``SqlStorage`` runs in one transaction: a slot is consumed exactly when its run
exists. A slot's run carries an idempotency key derived from the schedule and the slot, so a
slot that two schedulers both fire, or one fires again after a crash, finds its run.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from typing import Any

from pyworkflow._json_text import encode
from pyworkflow.events import RunStatus, ScheduleStatus
from pyworkflow.exceptions import CorruptRecordError, ScheduleExistsError, StorageError
from pyworkflow.storage.records import ScheduleFire, ScheduleRecord
from pyworkflow.storage.sql._params import new_run_values
from pyworkflow.storage.sql._session import Row, Session
from pyworkflow.storage.sql._statements.runs import GET_RUN_BY_KEY, REQUEST_CANCEL
from pyworkflow.storage.sql._statements.schedules import (
    COUNT_FIRED,
    COUNT_SCHEDULE_RUNS,
    DROP_DELETED_SCHEDULE,
    FIRE_STATE,
    FIRED_COLUMNS,
    GET_SCHEDULE,
    LIVE_SCHEDULE_RUNS,
    UPDATE_SCHEDULE,
    due_schedules_statement,
    insert_schedule,
    list_schedules_statement,
    next_due_statement,
    state_params,
)
from pyworkflow.storage.sql.schema import schedules

__all__ = [
    "count_schedule_runs",
    "create_schedule",
    "due_schedules",
    "expecting_all_created",
    "fire_schedule",
    "fired_params",
    "get_schedule",
    "list_schedules",
    "live_schedule_runs",
    "next_schedule_due_at",
    "update_schedule",
]

_IDS_PER_STATEMENT = 500


def _values(schedule: ScheduleRecord) -> dict[str, Any]:
    """A schedule's row keyed by column, JSON values encoded."""
    values = {column.name: getattr(schedule, column.name) for column in schedules.c}
    values["status"] = schedule.status.value
    values["spec"] = encode(schedule.spec)
    values["args"] = encode(schedule.args)
    values["buffered"] = encode(list(schedule.buffered))
    return values


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def expecting_all_created(fire: ScheduleFire) -> dict[str, Any]:
    """The fire's state as written first, by column: every run of it counted, the last named.

    Nearly every fire creates all its runs, so its count costs no statement of its own; one
    that found a slot's run (a backfill, a fire repeated after a crash) corrects it after.
    Only what a fire writes (``FIRED_COLUMNS``), with ``buffered`` encoded, and the schedule's
    id and version; built without a new record (a tick builds a thousand).
    """
    state = fire.schedule
    values = {name: getattr(state, name) for name in FIRED_COLUMNS}
    if fire.runs:
        values["total_runs"] = state.total_runs + len(fire.runs)
        values["last_run_id"] = fire.runs[-1].run_id
    values["buffered"] = encode(list(state.buffered))
    values["schedule_id"] = state.schedule_id
    values["version"] = state.version
    return values


def fired_params(fire: ScheduleFire) -> dict[str, Any]:
    """The ``b_*`` parameters of ``FIRE_STATE`` for a fire (every run counted as created)."""
    return {f"b_{name}": value for name, value in expecting_all_created(fire).items()}


def schedule_from_row(row: Row) -> ScheduleRecord:
    """A row of ``schedules`` (all columns, in table order) as a record.

    Raises:
        CorruptRecordError: a JSON cell (spec, args, buffered) cannot be read back.
    """
    (
        schedule_id, workflow_name, spec, args, overlap_policy, catchup_window, status,
        next_slot_at, due_at, buffered, total_runs, skipped_runs, last_slot_at, last_run_id,
        created_at, updated_at, version,
    ) = row  # fmt: skip
    cells: dict[str, Any] = {}
    for column, text in (("spec", spec), ("args", args), ("buffered", buffered)):
        try:
            cells[column] = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise CorruptRecordError("schedules", schedule_id, column, text, str(exc)) from exc
    return ScheduleRecord(
        schedule_id=schedule_id,
        workflow_name=workflow_name,
        spec=cells["spec"],
        args=cells["args"],
        overlap_policy=overlap_policy,
        catchup_window=_float(catchup_window),
        status=ScheduleStatus(status),
        next_slot_at=_float(next_slot_at),
        due_at=_float(due_at),
        buffered=tuple(float(b) for b in cells["buffered"]),
        total_runs=total_runs,
        skipped_runs=skipped_runs,
        last_slot_at=_float(last_slot_at),
        last_run_id=last_run_id,
        created_at=float(created_at),
        updated_at=float(updated_at),
        version=version,
    )


async def create_schedule(db: Session, schedule: ScheduleRecord) -> ScheduleRecord:
    """Insert a schedule at version 0, replacing a deleted one of the same id.

    Raises:
        ScheduleExistsError: a schedule that is not deleted has the id; nothing is written.
    """
    stored = dataclasses.replace(schedule, version=0)
    await db.execute(DROP_DELETED_SCHEDULE, {"b_schedule_id": schedule.schedule_id})
    params = {f"b_{name}": value for name, value in _values(stored).items()}
    if not await db.execute(insert_schedule(db.dialect), params):
        raise ScheduleExistsError(schedule.schedule_id)
    return stored


async def get_schedule(db: Session, schedule_id: str) -> ScheduleRecord | None:
    """The schedule, or None."""
    row = await db.first(GET_SCHEDULE, {"b_schedule_id": schedule_id})
    return None if row is None else schedule_from_row(row)


async def list_schedules(
    db: Session, *, status: ScheduleStatus | None, workflow_name: str | None, limit: int
) -> list[ScheduleRecord]:
    """Schedules by id, filtered (deleted ones only when ``status`` asks for them)."""
    if limit <= 0:
        return []
    statement = list_schedules_statement(status=status, workflow_name=workflow_name, limit=limit)
    return [schedule_from_row(row) for row in await db.query(statement)]


async def _write_state(db: Session, schedule: ScheduleRecord) -> ScheduleRecord | None:
    """Write a schedule's state if still at ``schedule.version``; the stored record, or None."""
    params = state_params(_values(schedule), schedule.version)
    if not await db.execute(UPDATE_SCHEDULE, params):
        return None
    return dataclasses.replace(schedule, version=schedule.version + 1)


async def update_schedule(db: Session, schedule: ScheduleRecord) -> ScheduleRecord | None:
    """Store a schedule's new state if its version is current; None (nothing written) if not."""
    return await _write_state(db, schedule)


async def due_schedules(
    db: Session,
    *,
    now: float,
    limit: int,
    workflow_names: Collection[str] | None,
    after: tuple[float, str] | None = None,
) -> list[ScheduleRecord]:
    """Up to ``limit`` schedules due at ``now`` (past ``after``), in ``(due_at, id)`` order."""
    if limit <= 0 or (workflow_names is not None and not workflow_names):
        return []
    params: dict[str, Any] = {"b_now": now, "b_limit": limit}
    if workflow_names is not None:
        params["b_names"] = list(workflow_names)
    if after is not None:
        params["b_after_due"], params["b_after_id"] = after
    statement = due_schedules_statement(workflow_names is not None, after is not None)
    return [schedule_from_row(row) for row in await db.all(statement, params)]


async def next_schedule_due_at(
    db: Session, *, workflow_names: Collection[str] | None, after: float | None = None
) -> float | None:
    """The earliest ``due_at`` (later than ``after``), or None."""
    if workflow_names is not None and not workflow_names:
        return None
    params: dict[str, Any] = {}
    if workflow_names is not None:
        params["b_names"] = list(workflow_names)
    if after is not None:
        params["b_after"] = after
    statement = next_due_statement(workflow_names is not None, after is not None)
    row = await db.first(statement, params)
    return None if row is None else float(row[0])


async def fire_schedule(db: Session, fire: ScheduleFire) -> list[str] | None:
    """The schedule's new state, its slots' runs and its cancel requests, or nothing.

    Runs in one transaction (``SqlStorage._run_atomic``): the state is written first, under
    its version check, so a scheduler that lost the race writes nothing at all. It writes only
    what a fire changes (``FIRED_COLUMNS``) and counts every run of the fire as created; a
    slot whose run existed is taken off again after.
    """
    if not await db.execute(FIRE_STATE, fired_params(fire)):
        return None
    run_ids: list[str] = []
    created = 0
    for new in fire.runs:
        record, values = new_run_values(new)
        if await db.insert_run(new, record, values):
            run_ids.append(new.run_id)
            created += 1
            continue
        # The slot's key is taken: its run exists (fired before a crash, or by a backfill).
        row = await db.first(GET_RUN_BY_KEY, {"b_key": new.idempotency_key})
        if row is None:  # only the run id clashed: 128 random bits, so never in practice
            raise StorageError(f"a run with id {new.run_id!r} already exists")
        run_ids.append(row[0])
    if created < len(fire.runs):  # some slots had their runs: count only those made here
        params = {
            "b_schedule_id": fire.schedule.schedule_id,
            "b_created": created - len(fire.runs),
            "b_last_run_id": run_ids[-1],
        }
        await db.execute(COUNT_FIRED, params)
    for run_id in fire.cancel:
        params = {"b_run_id": run_id, "b_now": fire.now, "b_reason": fire.cancel_reason}
        await db.wake(REQUEST_CANCEL, params)
    return run_ids


async def live_schedule_runs(db: Session, schedule_ids: Collection[str]) -> dict[str, list[str]]:
    """The runs of these schedules that have not ended, by schedule id, oldest first."""
    found: dict[str, list[str]] = {}
    ids = list(schedule_ids)
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        chunk = {"b_ids": ids[start : start + _IDS_PER_STATEMENT]}
        for schedule_id, run_id in await db.all(LIVE_SCHEDULE_RUNS, chunk):
            found.setdefault(schedule_id, []).append(run_id)
    return found


async def count_schedule_runs(db: Session, schedule_id: str) -> dict[RunStatus, int]:
    """How many stored runs the schedule started, by status."""
    rows = await db.all(COUNT_SCHEDULE_RUNS, {"b_schedule_id": schedule_id})
    return {RunStatus(status): int(count) for status, count in rows}
