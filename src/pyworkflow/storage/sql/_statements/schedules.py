"""The statements of schedules: create, read, list, the tick's due query, versioned writes.

A scheduler's tick reads ``ix_schedules_due_at`` in order and stops after ``limit`` rows, or
after one for the earliest due time: only active schedules have a ``due_at``. Every write of a
schedule's state is one conditional UPDATE on ``(schedule_id, version)``, so of two writers
that read one version exactly one writes (DESIGN §2.3's optimistic append, for schedules).
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from pyworkflow.events import ScheduleStatus
from pyworkflow.storage.sql._terms import LIVE, in_list, param, unindexed, upsert
from pyworkflow.storage.sql.schema import runs, schedules

__all__ = [
    "COUNT_FIRED",
    "COUNT_SCHEDULE_RUNS",
    "DROP_DELETED_SCHEDULE",
    "FIRED_COLUMNS",
    "FIRE_STATE",
    "GET_SCHEDULE",
    "LIVE_SCHEDULE_RUNS",
    "UPDATE_SCHEDULE",
    "due_schedules_statement",
    "insert_schedule",
    "list_schedules_statement",
    "next_due_statement",
    "state_params",
]

GET_SCHEDULE = sa.select(schedules).where(
    schedules.c.schedule_id == param("b_schedule_id", sa.String)
)

DROP_DELETED_SCHEDULE = sa.delete(schedules).where(
    schedules.c.schedule_id == param("b_schedule_id", sa.String),
    schedules.c.status == ScheduleStatus.DELETED.value,
)
"""Forget a deleted schedule whose id a new one takes (its runs keep their schedule id)."""


@functools.cache
def insert_schedule(dialect: str) -> Any:
    """Insert a schedule's row (parameters ``b_<column>``) unless its id is taken: no row then."""
    values = {c.name: param(f"b_{c.name}", c.type) for c in schedules.c}
    return upsert(dialect, schedules).values(values).on_conflict_do_nothing()


_STATE_COLUMNS = [c.name for c in schedules.c if c.name not in ("schedule_id", "created_at")]

UPDATE_SCHEDULE = (
    sa.update(schedules)
    .where(
        schedules.c.schedule_id == param("b_schedule_id", sa.String),
        schedules.c.version == param("b_version", sa.Integer),
    )
    .values(
        {
            name: (
                schedules.c.version + 1
                if name == "version"
                else param(f"b_{name}", schedules.c[name].type)
            )
            for name in _STATE_COLUMNS
        }
    )
)
"""Write a schedule's state if it is still at ``b_version``; it then is one version further.

Changes no row when another writer got there first (or the schedule is gone)."""

FIRED_COLUMNS = (
    "next_slot_at",
    "due_at",
    "buffered",
    "total_runs",
    "skipped_runs",
    "last_slot_at",
    "last_run_id",
    "updated_at",
)
"""What a fire changes of a schedule: its slots and counts, never its spec, call or policy."""

FIRE_STATE = (
    sa.update(schedules)
    .where(
        schedules.c.schedule_id == param("b_schedule_id", sa.String),
        schedules.c.version == param("b_version", sa.Integer),
    )
    .values(
        {
            **{name: param(f"b_{name}", schedules.c[name].type) for name in FIRED_COLUMNS},
            "version": schedules.c.version + 1,
        }
    )
)
"""A fire's new slots and counts, if the schedule is still at ``b_version`` (else no row):
the spec and the call stay as stored, so a fire rewrites no large cell."""

COUNT_FIRED = (
    sa.update(schedules)
    .where(schedules.c.schedule_id == param("b_schedule_id", sa.String))
    .values(
        total_runs=schedules.c.total_runs + param("b_created", sa.Integer),
        last_run_id=param("b_last_run_id", sa.String),
    )
)
"""Correct a fire's count of runs created by ``b_created`` (negative: slots whose runs it
found), and name the last run of the fire."""

LIVE_SCHEDULE_RUNS = (
    sa.select(runs.c.schedule_id, runs.c.run_id)
    .where(in_list(runs.c.schedule_id, "b_ids"), in_list(runs.c.status, values=LIVE))
    .order_by(runs.c.schedule_id, runs.c.created_at, runs.c.run_id)
)
"""The live runs of the schedules in ``b_ids``: ``ix_runs_schedule_id``, then a filter."""

COUNT_SCHEDULE_RUNS = (
    sa.select(runs.c.status, sa.func.count())
    .where(runs.c.schedule_id == param("b_schedule_id", sa.String))
    .group_by(runs.c.status)
)
"""How many runs schedule ``b_schedule_id`` started, by status."""


@functools.cache
def due_schedules_statement(by_names: bool, after: bool = False) -> sa.Select[Any]:
    """Schedules with ``due_at <= b_now`` in ``(due_at, schedule_id)`` order, at most ``b_limit``.

    ``by_names``: only those of the workflows in ``b_names`` (a filter on the index walk).
    ``after``: only those past ``(b_after_due, b_after_id)``; the walk of
    ``ix_schedules_due_at`` (both columns) starts there.
    """
    terms: list[sa.ColumnElement[bool]] = [schedules.c.due_at <= param("b_now", sa.Float)]
    if after:
        terms.append(
            sa.tuple_(schedules.c.due_at, schedules.c.schedule_id)
            > sa.tuple_(param("b_after_due", sa.Float), param("b_after_id", sa.String))
        )
    if by_names:
        terms.append(in_list(unindexed(schedules.c.workflow_name), "b_names"))
    return (
        sa.select(schedules)
        .where(*terms)
        .order_by(schedules.c.due_at, schedules.c.schedule_id)
        .limit(param("b_limit", sa.Integer))
    )


@functools.cache
def next_due_statement(by_names: bool, after: bool = False) -> sa.Select[Any]:
    """The earliest ``due_at`` (of the workflows in ``b_names``): one step into the index.

    ``after``: only one later than ``b_after`` (the index walk starts there).
    """
    terms: list[sa.ColumnElement[bool]] = [
        schedules.c.due_at > param("b_after", sa.Float)
        if after
        else schedules.c.due_at.is_not(None)
    ]
    if by_names:
        terms.append(in_list(unindexed(schedules.c.workflow_name), "b_names"))
    return sa.select(schedules.c.due_at).where(*terms).order_by(schedules.c.due_at).limit(1)


def list_schedules_statement(
    *, status: ScheduleStatus | None, workflow_name: str | None, limit: int
) -> sa.Select[Any]:
    """Schedules by id, filtered; built per call, its values written into it (a cold path)."""
    stmt = sa.select(schedules)
    if status is None:
        stmt = stmt.where(schedules.c.status != ScheduleStatus.DELETED.value)
    else:
        stmt = stmt.where(schedules.c.status == ScheduleStatus(status).value)
    if workflow_name is not None:
        stmt = stmt.where(schedules.c.workflow_name == workflow_name)
    return stmt.order_by(schedules.c.schedule_id).limit(limit)


def state_params(values: dict[str, Any], version: int) -> dict[str, Any]:
    """The ``b_*`` parameters of :data:`UPDATE_SCHEDULE` from a row's values by column."""
    params = {f"b_{name}": values[name] for name in _STATE_COLUMNS if name != "version"}
    params["b_schedule_id"] = values["schedule_id"]
    params["b_version"] = version
    return params
