"""What one logged event says, in one line: the summaries of a run's timeline.

Everything here is derived from the log alone, so a run reads the same in a process that does
not have its workflow code. Values are decoded with the given codec and cut short. A summary
never shows a hook's nonce: without a configured secret key, the nonce and the run's ids are
enough to derive the hook's token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyworkflow.events import EventType
from pyworkflow.inspect.text import format_call, format_duration, format_time, short
from pyworkflow.inspect.values import decode
from pyworkflow.serialization import Codec
from pyworkflow.storage import EventRecord

__all__ = ["summarize"]

# Payload keys a summary never prints: the format version, and a hook's token nonce.
_UNSHOWN = frozenset({"v", "nonce"})


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


def _value(data: dict[str, Any], codec: Codec, key: str) -> str:
    return short(decode(codec, data.get(key)))


def _child(data: dict[str, Any]) -> str:
    return f"{data['child_id']} ({data['child_run_id']})"


# Built once (a page of a long run summarizes thousands of events): each takes the payload,
# the event and the codec.
_SUMMARIES: dict[EventType, Callable[[dict[str, Any], EventRecord, Codec], str]] = {
    EventType.WORKFLOW_STARTED: lambda d, e, c: (
        format_call(str(d.get("workflow", "?")), decode(c, d.get("args")))
        + (f" key={d['idempotency_key']!r}" if d.get("idempotency_key") else "")
    ),
    EventType.WORKFLOW_COMPLETED: lambda d, e, c: f"-> {_value(d, c, 'result')}",
    EventType.WORKFLOW_FAILED: lambda d, e, c: _error(d.get("error")),
    EventType.WORKFLOW_CANCELLED: lambda d, e, c: str(d.get("reason") or ""),
    EventType.WORKFLOW_CONTINUED_AS_NEW: lambda d, e, c: f"continued as {d['new_run_id']}",
    EventType.WORKFLOW_RESUMED: lambda d, e, c: "resumed by hand: failed steps retry afresh",
    EventType.WORKFLOW_INTERRUPTED: lambda d, e, c: _interruption(d),
    EventType.STEP_STARTED: lambda d, e, c: f"{d.get('step_id')} attempt {d.get('attempt')}",
    EventType.STEP_COMPLETED: lambda d, e, c: f"{d.get('step_id')} -> {_value(d, c, 'result')}",
    EventType.STEP_RETRYING: lambda d, e, c: (
        f"{d.get('step_id')} attempt {d.get('attempt')} failed: "
        f"{_error(d.get('error'))}; retry in "
        f"{format_duration(float(d.get('retry_at', e.created_at)) - e.created_at)}"
    ),
    EventType.STEP_FAILED: lambda d, e, c: f"{d.get('step_id')} {_error(d.get('error'))}",
    EventType.SLEEP_STARTED: lambda d, e, c: (
        f"{d.get('sleep_id')} for "
        f"{format_duration(float(d.get('wake_at', e.created_at)) - e.created_at)}"
        f", until {format_time(d.get('wake_at'))}"
    ),
    EventType.SLEEP_COMPLETED: lambda d, e, c: str(d.get("sleep_id", "")),
    EventType.SIDE_EFFECT_RECORDED: lambda d, e, c: (
        # A patch marker (``patched("id")``) is logged as a side effect with its change id.
        f"patched({d['change_id']!r})"
        if "change_id" in d
        else f"{d.get('kind')}() = {_value(d, c, 'value')}"
    ),
    EventType.CANCELLATION_REQUESTED: lambda d, e, c: str(d.get("reason") or ""),
    # Never the nonce: without a secret key, it and the run's ids give the token away.
    EventType.HOOK_CREATED: lambda d, e, c: (
        f"{d['hook_id']} waits for a payload"
        + (f" of type {d['payload_type']}" if d.get("payload_type") else "")
        + (
            f"; expires {_until(d['expires_at'], e.created_at)}"
            if d.get("expires_at") is not None
            else ""
        )
    ),
    EventType.HOOK_RECEIVED: lambda d, e, c: f"{d['hook_id']} received {_value(d, c, 'payload')}",
    EventType.HOOK_EXPIRED: lambda d, e, c: f"{d['hook_id']} expired before a payload arrived",
    EventType.CHILD_WORKFLOW_STARTED: lambda d, e, c: (
        f"{d['child_id']} started as {d['child_run_id']}, "
        f"{'awaited' if d.get('wait', True) else 'not awaited'}, "
        f"parent close policy {d.get('parent_close_policy')}"
    ),
    EventType.CHILD_WORKFLOW_COMPLETED: lambda d, e, c: f"{_child(d)} -> {_value(d, c, 'result')}",
    EventType.CHILD_WORKFLOW_FAILED: lambda d, e, c: (
        f"{_child(d)} failed: {_error(d.get('error'))}"
    ),
    EventType.CHILD_WORKFLOW_CANCELLED: lambda d, e, c: (
        f"{_child(d)} cancelled" + (f": {d['reason']}" if d.get("reason") else "")
    ),
    EventType.CHILD_WORKFLOW_CANCEL_REQUESTED: lambda d, e, c: (
        f"{_child(d)} asked to cancel" + (f": {d['reason']}" if d.get("reason") else "")
    ),
}


def summarize(event: EventRecord, codec: Codec) -> str:
    """What one event says, in one line.

    An event this version cannot describe (a type added later, a payload of another shape)
    reads as its fields, ``key=value``, rather than failing the page.

    Example:
        >>> summarize(EventRecord("run_1", 4, EventType.STEP_STARTED,
        ...                       {"step_id": "charge#1", "attempt": 2}, 0.0), Codec())
        'charge#1 attempt 2'
    """
    make = _SUMMARIES.get(event.type)
    if make is not None:
        try:
            return make(event.payload, event, codec)
        except (KeyError, TypeError, ValueError):
            pass
    return ", ".join(f"{k}={short(v)}" for k, v in event.payload.items() if k not in _UNSHOWN)
