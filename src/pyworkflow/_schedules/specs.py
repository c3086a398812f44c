"""What a schedule is: its spec (cron, interval or calendar, time zone, bounds, jitter) and policy.

Every value is checked when the schedule is defined (``ScheduleSpec(...)``, ``create_schedule``,
``@scheduled_workflow``): a bad cron expression, interval, time zone or bound is an
``InvalidScheduleError`` naming it, raised before anything is written. Cron expressions are
cronsim's (a maintained library, never a parser of ours): five fields, or six with seconds
first. A spec is stored as a JSON object (:meth:`ScheduleSpec.to_json`) and read back by
:meth:`ScheduleSpec.from_json`.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import InvalidDurationError, InvalidScheduleError

__all__ = ["CalendarSpec", "OverlapPolicy", "ScheduleSpec", "overlap_policy"]


class OverlapPolicy(enum.StrEnum):
    """What a slot does while a run the schedule started earlier is still going.

    ``SKIP`` (the default): the slot starts nothing and is counted as skipped. ``BUFFER_ONE``:
    one slot waits and starts when the running run ends; later ones are skipped meanwhile.
    ``BUFFER_ALL``: every slot waits its turn, each starting when the one before ends (a
    backlog can grow without bound). ``CANCEL_OTHER``: the running run is asked to cancel and
    the slot starts at once. ``ALLOW_ALL``: the slot starts at once, beside the running run.
    """

    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    BUFFER_ALL = "buffer_all"
    CANCEL_OTHER = "cancel_other"
    ALLOW_ALL = "allow_all"


def overlap_policy(value: OverlapPolicy | str) -> OverlapPolicy:
    """``value`` as an OverlapPolicy (``"skip"``, ``"SKIP"``, ``OverlapPolicy.SKIP`` ...).

    Raises:
        InvalidScheduleError: not one of the policies.
    """
    try:
        return OverlapPolicy(value.lower() if isinstance(value, str) else value)
    except ValueError:
        names = ", ".join(p.name for p in OverlapPolicy)
        raise InvalidScheduleError("overlap_policy", value, f"use one of {names}") from None


_RANGES = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "day_of_month": (1, 31),
    "month": (1, 12),
    "day_of_week": (0, 6),
}


@dataclass(frozen=True, slots=True)
class CalendarSpec:
    """A calendar slot: at ``hour:minute:second`` on the days that match (all when None).

    Example:
        >>> CalendarSpec(day_of_month=1, hour=0)  # midnight on the 1st of every month

    Attributes:
        second: 0-59.
        minute: 0-59.
        hour: 0-23.
        day_of_month: 1-31, or None for every day.
        month: 1-12, or None for every month.
        day_of_week: 0-6 (Sunday is 0), or None for every weekday.

    Raises:
        InvalidScheduleError: a value out of its range.
    """

    second: int = 0
    minute: int = 0
    hour: int = 0
    day_of_month: int | None = None
    month: int | None = None
    day_of_week: int | None = None

    def __post_init__(self) -> None:
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            if value is None and name in ("second", "minute", "hour"):
                raise InvalidScheduleError(f"calendar {name}", value, "a number is required")
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
            ):
                raise InvalidScheduleError(
                    f"calendar {name}", value, f"use a whole number from {low} to {high}"
                )

    def cron(self) -> str:
        """The same slots as a cron expression (five fields when ``second`` is 0).

        Five fields keep cron's daylight-saving rules (see ``slots``), which cronsim applies
        to five-field expressions only.
        """

        def part(value: int | None) -> str:
            return "*" if value is None else str(value)

        days = f"{part(self.day_of_month)} {part(self.month)} {part(self.day_of_week)}"
        base = f"{self.minute} {self.hour} {days}"
        return base if self.second == 0 else f"{self.second} {base}"

    def to_json(self) -> dict[str, int | None]:
        """The fields as a JSON object."""
        return {name: getattr(self, name) for name in _RANGES}


def _check_cron(expression: Any) -> str:
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidScheduleError("cron", expression, "a cron expression string is required")
    try:
        CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
    except (CronSimError, ValueError, KeyError, IndexError) as exc:
        reason = str(exc) or type(exc).__name__
        raise InvalidScheduleError(
            "cron", expression, f"{reason} (five fields: minute hour day month weekday)"
        ) from exc
    return expression


def _zone(name: Any) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise InvalidScheduleError("timezone", name, "an IANA time zone name is required")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidScheduleError(
            "timezone", name, "no such IANA time zone (e.g. 'UTC', 'Europe/Prague')"
        ) from exc


def _moment(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise InvalidScheduleError(name, value, "a naive datetime; give it a tzinfo")
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise InvalidScheduleError(name, value, "an aware datetime is required")


def _seconds(name: str, value: Any, *, minimum: float) -> float:
    try:
        seconds = parse_duration(value)
    except InvalidDurationError as exc:
        raise InvalidScheduleError(name, value, exc.reason or "not a duration") from exc
    if seconds < minimum:
        raise InvalidScheduleError(name, value, f"at least {minimum:g} seconds")
    return seconds


@dataclass(frozen=True)
class ScheduleSpec:
    """When a schedule starts its runs: exactly one of ``cron``, ``interval`` or ``calendar``.

    Example:
        >>> ScheduleSpec(cron="0 9 * * 1-5", timezone="Europe/Prague")
        >>> ScheduleSpec(interval="5m")
        >>> ScheduleSpec(calendar=[CalendarSpec(day_of_month=1), CalendarSpec(day_of_month=15)])

    Attributes:
        cron: a cron expression (``"0 9 * * *"``), read in ``timezone``.
        interval: a duration (``"30s"``, ``"5m"``, seconds, a timedelta): slots at the
            schedule's start (``start_at``, else its creation) and every interval after it.
        calendar: calendar slots (``CalendarSpec`` or its fields as a dict), read in
            ``timezone``; a slot is any time one of them matches.
        timezone: the IANA zone cron and calendar slots are read in (``"UTC"`` by default).
            "09:00 Europe/Prague" stays 09:00 there across daylight-saving changes.
        start_at: no slot before this aware datetime.
        end_at: no slot after it.
        jitter: up to this long after its slot a run starts: a fixed offset per slot (derived
            from the schedule and the slot), so every scheduler picks the same one.

    Raises:
        InvalidScheduleError: a bad cron expression, interval, time zone, calendar value,
            bound or jitter; none or several of cron, interval and calendar.
    """

    cron: str | None = None
    interval: str | float | timedelta | None = None
    calendar: list[CalendarSpec] | None = None
    timezone: str = "UTC"
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: str | float | timedelta | None = None
    interval_seconds: float | None = field(init=False, default=None)
    jitter_seconds: float = field(init=False, default=0.0)
    start_ts: float | None = field(init=False, default=None)
    end_ts: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        kinds = [k for k in ("cron", "interval", "calendar") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise InvalidScheduleError(
                "spec", kinds, "give exactly one of cron=, interval= or calendar="
            )
        if self.cron is not None:
            _check_cron(self.cron)
        if self.interval is not None:
            object.__setattr__(
                self, "interval_seconds", _seconds("interval", self.interval, minimum=1.0)
            )
        if self.calendar is not None:
            if not isinstance(self.calendar, list | tuple) or not self.calendar:
                raise InvalidScheduleError("calendar", self.calendar, "a non-empty list")
            entries = [
                c if isinstance(c, CalendarSpec) else CalendarSpec(**_fields(c))
                for c in self.calendar
            ]
            object.__setattr__(self, "calendar", entries)
        _zone(self.timezone)
        start, end = _moment("start_at", self.start_at), _moment("end_at", self.end_at)
        if start is not None and end is not None and end < start:
            raise InvalidScheduleError("end_at", self.end_at, "before start_at")
        object.__setattr__(self, "start_ts", start)
        object.__setattr__(self, "end_ts", end)
        if self.jitter is not None:
            object.__setattr__(self, "jitter_seconds", _seconds("jitter", self.jitter, minimum=0))

    @property
    def zone(self) -> ZoneInfo:
        """The time zone as a ZoneInfo."""
        return ZoneInfo(self.timezone)

    def cron_expressions(self) -> list[str]:
        """The cron expressions whose slots are this spec's (none for an interval)."""
        if self.cron is not None:
            return [self.cron]
        return [c.cron() for c in self.calendar or ()]

    def describe(self) -> str:
        """One line for people: ``cron '0 9 * * *' (Europe/Prague)``, ``every 30s`` ..."""
        if self.cron is not None:
            what = f"cron {self.cron!r}"
        elif self.interval is not None:
            text = (
                self.interval if isinstance(self.interval, str) else f"{self.interval_seconds:g}s"
            )
            return f"every {text}"
        else:
            what = "calendar " + ", ".join(c.cron() for c in self.calendar or ())
        return f"{what} ({self.timezone})"

    def to_json(self) -> dict[str, Any]:
        """The spec as stored: a JSON object."""
        interval = self.interval
        if isinstance(interval, timedelta):
            interval = interval.total_seconds()
        jitter = self.jitter
        if isinstance(jitter, timedelta):
            jitter = jitter.total_seconds()
        return {
            "cron": self.cron,
            "interval": interval,
            "calendar": None if self.calendar is None else [c.to_json() for c in self.calendar],
            "timezone": self.timezone,
            "start_at": self.start_ts,
            "end_at": self.end_ts,
            "jitter": jitter,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScheduleSpec:
        """A spec read back from what :meth:`to_json` stored.

        Specs are immutable and schedules often share one ("0 9 * * *"), so the checked spec
        of each stored form is kept (a tick builds one per due schedule: B10).
        """
        calendar = data.get("calendar")
        key = (
            data.get("cron"),
            data.get("interval"),
            None if calendar is None else tuple(tuple(sorted(c.items())) for c in calendar),
            data.get("timezone") or "UTC",
            data.get("start_at"),
            data.get("end_at"),
            data.get("jitter"),
        )
        return _stored_spec(key)


@functools.lru_cache(maxsize=4096)
def _stored_spec(key: tuple[Any, ...]) -> ScheduleSpec:
    cron, interval, calendar, timezone, start_at, end_at, jitter = key

    def moment(value: float | None) -> datetime | None:
        return None if value is None else datetime.fromtimestamp(value, UTC)

    return ScheduleSpec(
        cron=cron,
        interval=interval,
        calendar=None if calendar is None else [CalendarSpec(**dict(c)) for c in calendar],
        timezone=timezone,
        start_at=moment(start_at),
        end_at=moment(end_at),
        jitter=jitter,
    )


def _fields(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise InvalidScheduleError("calendar", entry, "a CalendarSpec or a dict of its fields")
    unknown = set(entry) - set(_RANGES)
    if unknown:
        raise InvalidScheduleError("calendar", entry, f"unknown fields {sorted(unknown)}")
    return entry
