"""How times, durations, values and calls read in one line of text.

Timeline summaries are written with these, and text renderers (the CLI's tables, a web page)
use the same forms, so that a run reads alike wherever it is shown. Times are UTC.
"""

from __future__ import annotations

import json
from typing import Any

from pyworkflow.durations import to_datetime
from pyworkflow.inspect.values import Undecodable, jsonable

__all__ = ["format_call", "format_duration", "format_time", "short"]

_SHORT = 60


def format_time(moment: float | None, *, precise: bool = False) -> str:
    """``2024-05-01 12:00:00`` in UTC (with milliseconds when ``precise``); ``-`` for None.

    Example:
        >>> format_time(1714564800.25, precise=True)
        '2024-05-01 12:00:00.250'
    """
    if moment is None:
        return "-"
    when = to_datetime(moment)  # a time beyond year 9999 shows as its last second
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{when.microsecond // 1000:03d}" if precise else text


def format_duration(seconds: float) -> str:
    """``0.105s``, ``42.0s``, ``5m03s``, ``2h07m``, ``3d04h``: finer when short.

    Example:
        >>> format_duration(303)
        '5m03s'
    """
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 60:
        return f"{seconds:.3f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def short(value: Any, limit: int = _SHORT) -> str:
    """A decoded value as compact JSON, cut to ``limit`` characters.

    Example:
        >>> short({"ok": True})
        '{"ok": true}'
    """
    if isinstance(value, Undecodable):
        return f"<cannot decode here: {value.reason}>"
    text = json.dumps(jsonable(value), ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_call(name: str, arguments: Any) -> str:
    """``name(1, "x", flag=true)`` from a decoded ``{"args": [...], "kwargs": {...}}``.

    Example:
        >>> format_call("onboarding", {"args": ["u-42"], "kwargs": {"vip": True}})
        'onboarding("u-42", vip=true)'
    """
    if not isinstance(arguments, dict):
        return f"{name}({short(arguments)})"
    parts = [short(a) for a in arguments.get("args", [])]
    parts += [f"{k}={short(v)}" for k, v in arguments.get("kwargs", {}).items()]
    return f"{name}({', '.join(parts)})"
