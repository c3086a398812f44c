"""How a run's event log reads to a person: a line per event, the time between, step attempts.

Everything here is derived from the log alone, so ``runs show`` describes runs whose workflow
code this process does not have. Values in summaries are decoded with the given codec and cut
short; ``runs history`` shows payloads whole. A summary never shows a hook's nonce: without a
configured secret key, the nonce and the run's ids are enough to derive the hook's token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyworkflow.cli.shapes import Undecodable, decode, iso, jsonable
from pyworkflow.durations import to_datetime
from pyworkflow.events import EventType
from pyworkflow.serialization import Codec
from pyworkflow.storage.records import EventRecord

__all__ = [
    "StepAttempt",
    "TimelineEntry",
    "format_call",
    "format_duration",
    "format_time",
    "short",
    "step_attempts",
    "summarize",
    "timeline",
]

_SHORT = 60
# Payload keys a summary never prints: the format version, and a hook's token nonce.
_UNSHOWN = frozenset({"v", "nonce"})
_RUN_ENDED = frozenset(
    {
        EventType.WORKFLOW_COMPLETED,
        EventType.WORKFLOW_FAILED,
        EventType.WORKFLOW_CANCELLED,
        EventType.WORKFLOW_CONTINUED_AS_NEW,
    }
)


def format_time(moment: float | None, *, precise: bool = False) -> str:
    """``2024-05-01 12:00:00`` in UTC (with milliseconds when ``precise``); ``-`` for None."""
    if moment is None:
        return "-"
    when = to_datetime(moment)  # a time beyond year 9999 shows as its last second
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{when.microsecond // 1000:03d}" if precise else text


def format_duration(seconds: float) -> str:
    """``0.105s``, ``42.0s``, ``5m03s``, ``2h07m``, ``3d04h``: finer when short."""
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
    """A decoded value as compact JSON, cut to ``limit`` characters."""
    if isinstance(value, Undecodable):
        return f"<cannot decode here: {value.reason}>"
    text = json.dumps(jsonable(value), ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_call(name: str, arguments: Any) -> str:
    """``name(1, "x", flag=true)`` from a decoded ``{"args": [...], "kwargs": {...}}``."""
    if not isinstance(arguments, dict):
        return f"{name}({short(arguments)})"
    parts = [short(a) for a in arguments.get("args", [])]
    parts += [f"{k}={short(v)}" for k, v in arguments.get("kwargs", {}).items()]
    return f"{name}({', '.join(parts)})"


def _error(record: Any) -> str:
    if not isinstance(record, dict):
        return "?"
    return f"{record.get('type', '?')}: {record.get('message', '')}"


def _interruption(data: dict[str, Any]) -> str:
    """How a WORKFLOW_INTERRUPTED reads: whose lease lapsed, which attempts run again."""
    owner = data.get("owner")
    reason = data.get("reason") or ("lease lapsed" if owner else "handed back")
    if reason == "lease lapsed":
        head = f"taken over from {owner} (its lease lapsed), recovery {data.get('recovery')}"
    elif reason == "redelivered":
        head = "a step task delivered again: the worker executing it died"
    else:
        head = "taken on after a hand-back"
    cut = [f"{s['step_id']} attempt {s['attempt']}" for s in data.get("steps", ())]
    return head + (f"; cut short, running again: {', '.join(cut)}" if cut else "")


def _until(moment: Any, since: float) -> str:
    """``in 2h00m, at 2024-05-01 12:00:00`` for a stored wake-up or expiry time."""
    at = float(moment)
    return f"in {format_duration(at - since)}, at {format_time(at)}"


def _summaries(event: EventRecord, codec: Codec) -> dict[EventType, Callable[[], str]]:
    data = event.payload

    def value(key: str) -> str:
        return short(decode(codec, data.get(key)))

    def child() -> str:
        return f"{data['child_id']} ({data['child_run_id']})"

    return {
        EventType.WORKFLOW_STARTED: lambda: (
            format_call(str(data.get("workflow", "?")), decode(codec, data.get("args")))
            + (f" key={data['idempotency_key']!r}" if data.get("idempotency_key") else "")
        ),
        EventType.WORKFLOW_COMPLETED: lambda: f"-> {value('result')}",
        EventType.WORKFLOW_FAILED: lambda: _error(data.get("error")),
        EventType.WORKFLOW_CANCELLED: lambda: str(data.get("reason") or ""),
        EventType.WORKFLOW_CONTINUED_AS_NEW: lambda: f"continued as {data['new_run_id']}",
        EventType.WORKFLOW_RESUMED: lambda: "resumed by hand: failed steps retry afresh",
        EventType.WORKFLOW_INTERRUPTED: lambda: _interruption(data),
        EventType.STEP_STARTED: lambda: f"{data.get('step_id')} attempt {data.get('attempt')}",
        EventType.STEP_COMPLETED: lambda: f"{data.get('step_id')} -> {value('result')}",
        EventType.STEP_RETRYING: lambda: (
            f"{data.get('step_id')} attempt {data.get('attempt')} failed: "
            f"{_error(data.get('error'))}; retry in "
            f"{format_duration(float(data.get('retry_at', event.created_at)) - event.created_at)}"
        ),
        EventType.STEP_FAILED: lambda: f"{data.get('step_id')} {_error(data.get('error'))}",
        EventType.SLEEP_STARTED: lambda: (
            f"{data.get('sleep_id')} for "
            f"{format_duration(float(data.get('wake_at', event.created_at)) - event.created_at)}"
            f", until {format_time(data.get('wake_at'))}"
        ),
        EventType.SLEEP_COMPLETED: lambda: str(data.get("sleep_id", "")),
        EventType.SIDE_EFFECT_RECORDED: lambda: (
            # A patch marker (``patched("id")``) is logged as a side effect with its change id.
            f"patched({data['change_id']!r})"
            if "change_id" in data
            else f"{data.get('kind')}() = {value('value')}"
        ),
        EventType.CANCELLATION_REQUESTED: lambda: str(data.get("reason") or ""),
        # Never the nonce: without a secret key, it and the run's ids give the token away.
        EventType.HOOK_CREATED: lambda: (
            f"{data['hook_id']} waits for a payload"
            + (f" of type {data['payload_type']}" if data.get("payload_type") else "")
            + (
                f"; expires {_until(data['expires_at'], event.created_at)}"
                if data.get("expires_at") is not None
                else ""
            )
        ),
        EventType.HOOK_RECEIVED: lambda: f"{data['hook_id']} received {value('payload')}",
        EventType.HOOK_EXPIRED: lambda: f"{data['hook_id']} expired before a payload arrived",
        EventType.CHILD_WORKFLOW_STARTED: lambda: (
            f"{data['child_id']} started as {data['child_run_id']}, "
            f"{'awaited' if data.get('wait', True) else 'not awaited'}, "
            f"parent close policy {data.get('parent_close_policy')}"
        ),
        EventType.CHILD_WORKFLOW_COMPLETED: lambda: f"{child()} -> {value('result')}",
        EventType.CHILD_WORKFLOW_FAILED: lambda: f"{child()} failed: {_error(data.get('error'))}",
        EventType.CHILD_WORKFLOW_CANCELLED: lambda: (
            f"{child()} cancelled" + (f": {data['reason']}" if data.get("reason") else "")
        ),
        EventType.CHILD_WORKFLOW_CANCEL_REQUESTED: lambda: (
            f"{child()} asked to cancel" + (f": {data['reason']}" if data.get("reason") else "")
        ),
    }


def summarize(event: EventRecord, codec: Codec) -> str:
    """What one event says, in one line.

    An event this version cannot describe (a type added later, a payload of another shape)
    reads as its fields, ``key=value``, rather than failing the command.
    """
    make = _summaries(event, codec).get(event.type)
    if make is not None:
        try:
            return make()
        except (KeyError, TypeError, ValueError):
            pass
    return ", ".join(f"{k}={short(v)}" for k, v in event.payload.items() if k not in _UNSHOWN)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One event as ``runs show`` lists it."""

    seq: int
    type: str
    timestamp: float
    since_previous: float
    since_start: float
    summary: str

    def shape(self) -> dict[str, Any]:
        """The JSON keys of a timeline entry (see ``cli/shapes.py``)."""
        return {
            "seq": self.seq,
            "type": self.type,
            "timestamp": iso(self.timestamp),
            "since_previous": round(self.since_previous, 6),
            "since_start": round(self.since_start, 6),
            "summary": self.summary,
        }


def timeline(events: Sequence[EventRecord], codec: Codec) -> list[TimelineEntry]:
    """The events in order, each with the time since the previous one and since the start."""
    entries = []
    start = previous = events[0].created_at if events else 0.0
    for event in events:
        entries.append(
            TimelineEntry(
                seq=event.seq,
                type=event.type.value,
                timestamp=event.created_at,
                since_previous=event.created_at - previous,
                since_start=event.created_at - start,
                summary=summarize(event, codec),
            )
        )
        previous = event.created_at
    return entries


@dataclass(slots=True)
class StepAttempt:
    """One attempt of one step, from its STEP_STARTED to what ended it."""

    step_id: str
    name: str
    attempt: int
    started_at: float
    ended_at: float | None = None
    outcome: str = "running"
    error: dict[str, Any] | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None while it runs."""
        return None if self.ended_at is None else self.ended_at - self.started_at

    def shape(self) -> dict[str, Any]:
        """The JSON keys of a step attempt (see ``cli/shapes.py``)."""
        return {
            "step_id": self.step_id,
            "name": self.name,
            "attempt": self.attempt,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "duration": None if self.duration is None else round(self.duration, 6),
            "outcome": self.outcome,
            "error": self.error,
        }


def step_attempts(events: Sequence[EventRecord]) -> list[StepAttempt]:
    """Every step attempt the log records, in the order they started."""
    attempts: list[StepAttempt] = []
    open_by_step: dict[str, StepAttempt] = {}

    def close(step_id: str, at: float, outcome: str, error: Any = None) -> None:
        current = open_by_step.pop(step_id, None)
        if current is not None:
            current.ended_at, current.outcome = at, outcome
            current.error = error if isinstance(error, dict) else None

    for event in events:
        data = event.payload
        step_id = str(data.get("step_id", ""))
        if event.type is EventType.STEP_STARTED:
            # A second start of an open attempt: the worker running the first one stopped.
            close(step_id, event.created_at, "interrupted")
            started = StepAttempt(
                step_id=step_id,
                name=str(data.get("name", step_id.partition("#")[0])),
                attempt=int(data.get("attempt", 1)),
                started_at=event.created_at,
            )
            attempts.append(started)
            open_by_step[step_id] = started
        elif event.type is EventType.STEP_COMPLETED:
            close(step_id, event.created_at, "completed")
        elif event.type is EventType.STEP_RETRYING:
            close(step_id, event.created_at, "retried", data.get("error"))
        elif event.type is EventType.STEP_FAILED:
            close(step_id, event.created_at, "failed", data.get("error"))
        elif event.type is EventType.WORKFLOW_INTERRUPTED:
            # Its worker died (or let the run go) mid-attempt; the next attempt re-runs it.
            for cut in data.get("steps", ()):
                close(str(cut.get("step_id", "")), event.created_at, "interrupted")
        elif event.type in _RUN_ENDED:
            # e.g. cancelled while a step ran: that attempt's outcome was never logged.
            for open_id in list(open_by_step):
                close(open_id, event.created_at, "interrupted")
    return attempts
