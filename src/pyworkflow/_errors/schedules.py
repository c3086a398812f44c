"""Schedule errors: a schedule that cannot be defined, or one that is not there."""

from __future__ import annotations

from pyworkflow._errors.base import InputError

__all__ = ["InvalidScheduleError", "ScheduleExistsError", "ScheduleNotFoundError"]


class InvalidScheduleError(InputError):
    """A schedule that cannot be defined: a bad cron expression, interval, time zone, bound.

    Raised when the schedule is defined (``create_schedule``, ``update_schedule``,
    ``@scheduled_workflow``), before anything is written.

    Attributes:
        field: what is wrong (``"cron"``, ``"interval"``, ``"timezone"``, ``"calendar"`` ...).
        value: the value as given.
        reason: why it is refused.
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field, self.value, self.reason = field, value, reason
        super().__init__(f"{field} {value!r} is not valid for a schedule: {reason}")


class ScheduleNotFoundError(InputError):
    """No schedule has this id (or it was deleted, where that matters).

    Attributes:
        schedule_id: the id asked for.
    """

    def __init__(self, schedule_id: str, detail: str = "no schedule has this id") -> None:
        self.schedule_id = schedule_id
        super().__init__(f"schedule {schedule_id!r}: {detail}")


class ScheduleExistsError(InputError):
    """A schedule with this id already exists (and is not deleted).

    Attributes:
        schedule_id: the id that is taken.
    """

    def __init__(self, schedule_id: str) -> None:
        self.schedule_id = schedule_id
        super().__init__(
            f"a schedule with id {schedule_id!r} already exists; update it, or delete it first"
        )


# Their public home: type paths in logged errors name it, as for every other error.
for _name in __all__:
    globals()[_name].__module__ = "pyworkflow.exceptions"
