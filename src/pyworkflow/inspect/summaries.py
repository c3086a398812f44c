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
    reads as its fields, ``key=value``, rather than failing the page.

    Example:
        >>> summarize(EventRecord("run_1", 4, EventType.STEP_STARTED,
        ...                       {"step_id": "charge#1", "attempt": 2}, 0.0), Codec())
        'charge#1 attempt 2'
    """
    make = _summaries(event, codec).get(event.type)
    if make is not None:
        try:
            return make()
        except (KeyError, TypeError, ValueError):
            pass
    return ", ".join(f"{k}={short(v)}" for k, v in event.payload.items() if k not in _UNSHOWN)
