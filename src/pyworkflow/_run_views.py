"""How callers see stored runs and events: ``WorkflowRun`` and ``WorkflowEvent``.

A view never fails on what is stored, because a listing shows many runs and one bad run must not
hide the others. A run whose row storage read back damaged (a cell that is not JSON, or not of
its shape: ``RunRecord.damage``), or whose result this process cannot decode (its class is not
importable here, a pickle refused), or a stored time no ``datetime`` can hold (``1e20``, written
before durations were bounded), still gets a view: its ``damage`` says what is wrong, naming the
table, the run and the column. A value that cannot be read reads as None; a time is shown as
the nearest datetime there is (``durations.to_datetime``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyworkflow.durations import fits_datetime, to_datetime
from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import SerializationError
from pyworkflow.serialization import Codec
from pyworkflow.storage.records import EventRecord, RunRecord

__all__ = ["WorkflowEvent", "WorkflowRun", "damage_of", "event_view", "run_view"]


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    """A run as callers see it.

    Attributes:
        run_id: the run's id.
        workflow_name: its workflow.
        status: pending, running, suspended, completed, failed, cancelled, continued_as_new.
        result: the decoded result once completed.
        error: ``{"type", "message", "traceback"}`` once failed.
        created_at, updated_at, completed_at: aware UTC datetimes.
        wake_at: when a suspended run wakes, if it waits on a timer.
        idempotency_key, parent_run_id, recovery_count: as stored.
        parent_close_policy: for a child, ``"cancel"`` or ``"abandon"``.
        continued_from, continued_to: its neighbours in a continue-as-new chain.
        schedule_id: the schedule that started the run, or None.
        schedule_slot_at: the slot of that schedule it was started for (aware UTC).
        damage: None for a sound run; else what of it cannot be read or shown, e.g.
            ``"corrupt runs.args of run 'run_...': not valid JSON (...)"``. The values it names
            read as None, a time as ``datetime.max`` or ``datetime.min`` (UTC).
    """

    run_id: str
    workflow_name: str
    status: RunStatus
    result: Any
    error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    wake_at: datetime | None
    idempotency_key: str | None
    parent_run_id: str | None
    recovery_count: int
    parent_close_policy: str | None = None
    continued_from: str | None = None
    continued_to: str | None = None
    schedule_id: str | None = None
    schedule_slot_at: datetime | None = None
    damage: str | None = None
    context: dict[str, Any] | None = None
    """The fields of the step context the run set last (``get_workflow_run`` only)."""
    tags: tuple[str, ...] = ()
    """Its workflow's ``@workflow(tags=...)`` when the run started."""

    @property
    def continued_from_run_id(self) -> str | None:
        """``continued_from``, by the name the pyworkflow documentation uses."""
        return self.continued_from

    @property
    def continued_to_run_id(self) -> str | None:
        """``continued_to``, by the name the pyworkflow documentation uses."""
        return self.continued_to


@dataclass(frozen=True, slots=True)
class WorkflowEvent:
    """One event of a run's log: ``seq``, ``type``, ``timestamp`` and its ``data``.

    ``data`` is the logged payload, plus, for the readers of the pyworkflow documentation,
    ``step_name`` on step events (the name part of ``step_id``) and, on ``step_retrying``,
    ``retry_after`` (the retry's delay in seconds: the logged ``retry_in``) and ``resume_at``
    (ISO 8601).
    """

    run_id: str
    seq: int
    type: EventType
    timestamp: datetime
    data: dict[str, Any]

    @property
    def sequence(self) -> int:
        """``seq``, by the name the pyworkflow documentation uses."""
        return self.seq


_SHOWN_TIMES = ("created_at", "updated_at", "completed_at", "wake_at")


def _dt(value: float | None) -> datetime | None:
    return None if value is None else to_datetime(value)


def damage_of(record: RunRecord) -> str | None:
    """What of a stored run cannot be read or shown, naming table, run and column; or None."""
    problems = [] if record.damage is None else [str(record.damage)]
    for column in _SHOWN_TIMES:
        moment = getattr(record, column)
        if moment is not None and not fits_datetime(moment):
            problems.append(
                f"runs.{column} of run {record.run_id!r} holds {moment!r}, a time no datetime "
                f"can hold (shown as {to_datetime(moment).isoformat()})"
            )
    return "; ".join(problems) or None


def run_view(record: RunRecord, codec: Codec) -> WorkflowRun:
    """The caller's view of a stored run; never raises for what is stored (module docstring)."""
    damage = damage_of(record)
    result = None
    if record.status is RunStatus.COMPLETED:
        try:
            result = codec.decode(record.result)
        except SerializationError as exc:
            problem = f"the result of run {record.run_id!r} cannot be decoded here: {exc}"
            damage = problem if damage is None else f"{damage}; {problem}"
    return WorkflowRun(
        run_id=record.run_id,
        workflow_name=record.workflow_name,
        status=record.status,
        result=result,
        error=record.error,
        created_at=to_datetime(record.created_at),
        updated_at=to_datetime(record.updated_at),
        completed_at=_dt(record.completed_at),
        wake_at=_dt(record.wake_at) if record.status is RunStatus.SUSPENDED else None,
        idempotency_key=record.idempotency_key,
        parent_run_id=record.parent_run_id,
        recovery_count=record.recovery_count,
        parent_close_policy=record.parent_close_policy,
        continued_from=record.continued_from,
        continued_to=record.continued_to,
        schedule_id=record.schedule_id,
        schedule_slot_at=_dt(record.schedule_slot_at),
        damage=damage,
        tags=record.tags,
    )


def event_view(event: EventRecord) -> WorkflowEvent:
    """The caller's view of a logged event (see ``WorkflowEvent`` for the keys it adds)."""
    when = to_datetime(event.created_at)
    data = event.payload
    step_id = data.get("step_id")
    if isinstance(step_id, str) and "step_name" not in data:
        data = {**data, "step_name": data.get("name") or step_id.rpartition("#")[0]}
        retry_at = data.get("retry_at")
        if event.type is EventType.STEP_RETRYING and isinstance(retry_at, int | float):
            retry_in = data.get("retry_in")  # the delay as chosen (logs before it: computed)
            if not isinstance(retry_in, int | float):
                retry_in = max(0.0, retry_at - event.created_at)
            data["retry_after"] = round(retry_in, 3)
            if fits_datetime(retry_at):
                data["resume_at"] = to_datetime(retry_at).isoformat()
    return WorkflowEvent(event.run_id, event.seq, event.type, when, data)
