"""``@scheduled_workflow``: a workflow with the schedule it runs on, activated at start-up.

The decorator checks the schedule when the module is imported (a bad cron expression fails the
import, naming it) and registers the workflow as ``@workflow`` does; the schedule is stored
only by ``activate_scheduled_workflows()`` (``pyworkflow.schedules``), which an application
calls at start-up and ``pyworkflow worker run`` / ``scheduler run`` call for the modules they
load.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from pyworkflow._schedules.specs import CalendarSpec, OverlapPolicy, ScheduleSpec
from pyworkflow._schedules.specs import overlap_policy as as_policy
from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import InvalidDurationError, InvalidScheduleError
from pyworkflow.workflow import Workflow, workflow

__all__ = [
    "DecoratedSchedule",
    "catchup_seconds",
    "decorated_schedules",
    "scheduled_workflow",
]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class DecoratedSchedule:
    """The schedule a ``@scheduled_workflow`` declared, waiting to be activated."""

    schedule_id: str
    workflow_name: str
    spec: ScheduleSpec
    overlap_policy: OverlapPolicy
    catchup_window: float | None


_DECLARED: dict[str, DecoratedSchedule] = {}


def decorated_schedules() -> list[DecoratedSchedule]:
    """Every schedule declared by ``@scheduled_workflow`` in this process, by id."""
    return [_DECLARED[k] for k in sorted(_DECLARED)]


def catchup_seconds(value: str | float | timedelta | None) -> float | None:
    """A ``catchup_window`` as seconds (None stays None).

    Raises:
        InvalidScheduleError: not a duration.
    """
    if value is None:
        return None
    try:
        return parse_duration(value)
    except InvalidDurationError as exc:
        raise InvalidScheduleError("catchup_window", value, exc.reason or "not a duration") from exc


def scheduled_workflow(
    name: str | None = None,
    *,
    cron: str | None = None,
    interval: str | float | timedelta | None = None,
    calendar: list[CalendarSpec] | None = None,
    timezone: str = "UTC",
    overlap_policy: OverlapPolicy | str = OverlapPolicy.SKIP,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    jitter: str | float | timedelta | None = None,
    catchup_window: str | float | timedelta | None = None,
    schedule_id: str | None = None,
    max_duration: str | float | timedelta | None = None,
    queue: str | None = None,
    **_accepted: Any,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Workflow[P, R]]:
    """Register a workflow and the schedule it runs on (stored by ``activate_scheduled_workflows``).

    Example:
        >>> @scheduled_workflow(cron="0 9 * * 1-5", timezone="Europe/Prague")
        ... async def daily_report() -> dict: ...

    Args:
        name: the workflow's name (default: the function's).
        cron: a cron expression (one of cron, interval and calendar; see ``ScheduleSpec``).
        interval: a duration between slots.
        calendar: calendar slots.
        timezone: the IANA zone cron and calendar slots are read in.
        start_at: no slot before this aware datetime.
        end_at: no slot after it.
        jitter: up to this long after its slot a run starts.
        overlap_policy: what a slot does while the previous run still goes (default SKIP).
        catchup_window: missed slots younger than this still start (default: the latest
            missed slot only).
        schedule_id: the schedule's id (default: the workflow's name).
        max_duration: as for ``@workflow``.
        queue: as for ``@workflow``.
        **_accepted: options of the pyworkflow documentation that need nothing here
            (``recover_on_worker_loss``: every run is recovered from a lost worker).

    Raises:
        InvalidScheduleError: a bad cron expression, interval, time zone, bound or policy
            (at import, naming it).
        WorkflowDefinitionError: what ``@workflow`` refuses.
    """
    spec = ScheduleSpec(
        cron=cron,
        interval=interval,
        calendar=calendar,
        timezone=timezone,
        start_at=start_at,
        end_at=end_at,
        jitter=jitter,
    )
    policy = as_policy(overlap_policy)
    window = catchup_seconds(catchup_window)
    unknown = set(_accepted) - {"recover_on_worker_loss", "durable"}
    if unknown:
        raise InvalidScheduleError(
            "option", sorted(unknown), "not an option of @scheduled_workflow"
        )
    register = workflow(name, max_duration=max_duration, queue=queue)

    def decorate(fn: Callable[P, Coroutine[Any, Any, R]]) -> Workflow[P, R]:
        wf = register(fn)
        sid = schedule_id or wf.name
        _DECLARED[sid] = DecoratedSchedule(sid, wf.name, spec, policy, window)
        return wf

    return decorate
