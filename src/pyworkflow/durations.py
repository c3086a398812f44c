"""Durations and wake-up times: ``"30s"``, ``"1h30m"``, seconds, ``timedelta``, aware datetimes.

Every option that takes a duration (``sleep``, ``hook(timeout=...)``, ``retry_delay``, a step's
``timeout``) goes through :func:`parse_duration`, so they all accept and refuse the same values.
Durations are returned as float seconds. Timers are stored as absolute epoch seconds
(:func:`resolve_wake_time`), never as "remaining time", so a restart does not stretch a sleep.
:func:`to_datetime` turns a stored time back into a datetime for people, whatever is stored.

Accepted strings are one or more ``<number><unit>`` parts, largest unit first, optionally
separated by whitespace: ``"1w2d"``, ``"1h30m"``, ``"1.5h"``, ``"500ms"``. Units: ``w`` (weeks),
``d``, ``h``, ``m`` (minutes), ``s``, ``ms``. A bare number in a string (``"30"``) is refused: a
unit is required, so ``"30"`` cannot be mistaken for minutes.

No duration is longer than 100 years (:data:`MAX_DURATION_SECONDS`), and ``sleep`` takes no
datetime more than 100 years ahead. Every time pyworkflow stores is a float of epoch seconds
(``now + duration``) that must come back as a ``datetime`` when a run is shown, and a datetime
ends with the year 9999: ``sleep(10**20)`` was once stored as ``wake_at=1e20``, and every query
that showed the run failed from then on. A fixed bound rather than "until the year 9999" keeps
the rule the same for every option (a step's ``timeout`` has no ``now``), leaves any clock before
the year 9899 far from the edge, keeps such times precise to a few microseconds in a float, and
is longer than any timer, timeout or retry delay a real workflow waits for.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, datetime, timedelta

from pyworkflow.exceptions import InvalidDurationError

__all__ = [
    "MAX_DURATION_SECONDS",
    "fits_datetime",
    "parse_duration",
    "resolve_wake_time",
    "to_datetime",
]

MAX_DURATION_SECONDS = 100 * 365.25 * 86400.0
"""The longest duration accepted: 100 years (36,525 days), 3,155,760,000 seconds."""

_TOO_LONG = "too large: longer than 100 years, the most pyworkflow accepts"

_NUMBER = r"\d+(?:\.\d+)?"
# One regex for the whole string: each unit at most once, largest first. Compiled once because
# durations are parsed on hot paths (every sleep, every retry).
_DURATION_RE = re.compile(
    rf"""\s*
    (?:(?P<w>{_NUMBER})w\s*)?
    (?:(?P<d>{_NUMBER})d\s*)?
    (?:(?P<h>{_NUMBER})h\s*)?
    (?:(?P<m>{_NUMBER})m(?!s)\s*)?
    (?:(?P<s>{_NUMBER})s\s*)?
    (?:(?P<ms>{_NUMBER})ms\s*)?
    """,
    re.VERBOSE,
)
_UNIT_SECONDS = (("w", 604800.0), ("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0))


def parse_duration(value: str | int | float | timedelta) -> float:
    """Convert a duration to a number of seconds.

    Args:
        value: ``"30s"``, ``"5m"``, ``"1h"``, ``"2d"``, ``"1w"``, a compound such as ``"1h30m"``
            or ``"1d2h"``, ``"500ms"``, a non-negative number of seconds, or a non-negative
            ``timedelta``. Zero is allowed.

    Returns:
        The duration in seconds, ``>= 0`` and at most :data:`MAX_DURATION_SECONDS`.

    Raises:
        InvalidDurationError: for anything else (``"5 parsecs"``, ``""``, ``"-1s"``, a negative
            number, NaN, infinity, more than 100 years, ``True``, ``None``, a negative
            ``timedelta``, other types); the message quotes the value and says why.

    Example:
        >>> parse_duration("1h30m")
        5400.0
        >>> parse_duration(timedelta(minutes=2))
        120.0
    """
    # Exact type checks first: the common cases cost one comparison each.
    if type(value) is str:
        return _parse_text(value)
    if type(value) is int or type(value) is float:
        seconds = _as_float(value)
    elif isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise InvalidDurationError(value, "a bool is not a number of seconds")
    elif isinstance(value, int | float):
        seconds = _as_float(value)
    elif isinstance(value, str):
        return _parse_text(str(value))
    else:
        raise InvalidDurationError(value, f"a {type(value).__name__} is not a duration")
    if math.isnan(seconds):
        raise InvalidDurationError(value, "NaN")
    if math.isinf(seconds):
        raise InvalidDurationError(value, "not finite")
    if seconds < 0:
        raise InvalidDurationError(value, "negative")
    if seconds > MAX_DURATION_SECONDS:
        raise InvalidDurationError(value, _TOO_LONG)
    return seconds


def resolve_wake_time(value: str | int | float | timedelta | datetime, now: float) -> float:
    """Turn the argument of ``sleep`` into an absolute wake-up time.

    Args:
        value: a duration accepted by :func:`parse_duration`, or an aware ``datetime``.
        now: the current time, epoch seconds, from the executor's clock (virtual in tests).

    Returns:
        Epoch seconds. An aware datetime in the past is returned as is: the timer is due.

    Raises:
        InvalidDurationError: for a naive datetime (its instant is ambiguous), one more than 100
            years after ``now`` or before the year 1 in UTC, or an invalid duration.

    Example:
        >>> resolve_wake_time("1m", now=1000.0)
        1060.0
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidDurationError(
                value, "a naive datetime; pass tzinfo, e.g. datetime(..., tzinfo=timezone.utc)"
            )
        moment = value.timestamp()
        if moment - now > MAX_DURATION_SECONDS:
            raise InvalidDurationError(value, "more than 100 years from now, the most accepted")
        if not fits_datetime(moment):
            raise InvalidDurationError(value, "before the year 1 in UTC")
        return moment
    return now + parse_duration(value)


_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def to_datetime(moment: float) -> datetime:
    """Epoch seconds as an aware UTC datetime, also for a time no datetime can hold.

    Stored times are floats, and one written by an older version or by hand may lie outside
    ``datetime``'s years 1 to 9999 (``sleep(10**20)`` once stored ``1e20``). Such a time is
    shown as the nearest datetime there is, ``datetime.max`` (or ``datetime.min``, also for
    NaN), in UTC, so that showing it never fails; :func:`fits_datetime` tells them apart.

    Example:
        >>> to_datetime(0.0)
        datetime.datetime(1970, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
        >>> to_datetime(1e20).year
        9999
    """
    try:
        return datetime.fromtimestamp(moment, UTC)
    except (OverflowError, ValueError, OSError):
        return _LATEST if moment > 0 else _EARLIEST


def fits_datetime(moment: float) -> bool:
    """Whether epoch seconds name a time a ``datetime`` can hold (years 1 to 9999, UTC)."""
    try:
        datetime.fromtimestamp(moment, UTC)
    except (OverflowError, ValueError, OSError):
        return False
    return True


def _as_float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:
        raise InvalidDurationError(value, "too large") from None


# The same few strings recur ('1h', '30s'): cache them. Errors are not cached by lru_cache.
@functools.lru_cache(maxsize=256)
def _parse_text(text: str) -> float:
    match = _DURATION_RE.fullmatch(text)
    if match is None or match.lastgroup is None:
        raise InvalidDurationError(text, _why_not(text))
    parts = match.groupdict()
    seconds = sum(float(parts[unit]) * factor for unit, factor in _UNIT_SECONDS if parts[unit])
    if parts["ms"]:
        seconds += float(parts["ms"]) / 1000.0
    if not math.isfinite(seconds):
        raise InvalidDurationError(text, "too large")
    if seconds > MAX_DURATION_SECONDS:
        raise InvalidDurationError(text, _TOO_LONG)
    return seconds


def _why_not(text: str) -> str:
    stripped = text.strip()
    if not stripped:
        return "empty"
    if stripped.startswith("-"):
        return "negative"
    if _DURATION_RE.fullmatch(stripped + "s") is not None:
        return "no unit; add one of ms, s, m, h, d, w"
    return "expected numbers with units ms, s, m, h, d, w, largest first"
