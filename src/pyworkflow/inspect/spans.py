"""A run's log as spans on a time axis: step attempts, sleeps, hook waits and child runs.

What a timeline picture draws (the dashboard draws one bar per span): each span has a start,
an end (None while open) and how it ended. Marks are the moments between spans that matter
when reading a run: a take-over after a worker died, a resume by hand, a cancel request, the
run's end. Derived from the log alone, like the rest of the read model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pyworkflow.events import EventType
from pyworkflow.inspect.attempts import StepAttempt, step_attempts
from pyworkflow.inspect.values import iso
from pyworkflow.storage import EventRecord

__all__ = ["Mark", "Span", "spans"]

_ENDS: dict[EventType, tuple[str, str]] = {
    EventType.SLEEP_COMPLETED: ("sleep", "completed"),
    EventType.HOOK_RECEIVED: ("hook", "received"),
    EventType.HOOK_EXPIRED: ("hook", "expired"),
    EventType.CHILD_WORKFLOW_COMPLETED: ("child", "completed"),
    EventType.CHILD_WORKFLOW_FAILED: ("child", "failed"),
    EventType.CHILD_WORKFLOW_CANCELLED: ("child", "cancelled"),
}

_MARKS: dict[EventType, str] = {
    EventType.WORKFLOW_INTERRUPTED: "taken over",
    EventType.WORKFLOW_RESUMED: "resumed",
    EventType.CANCELLATION_REQUESTED: "cancel requested",
    EventType.WORKFLOW_COMPLETED: "completed",
    EventType.WORKFLOW_FAILED: "failed",
    EventType.WORKFLOW_CANCELLED: "cancelled",
    EventType.WORKFLOW_CONTINUED_AS_NEW: "continued as new",
}


@dataclass(frozen=True, slots=True)
class Span:
    """One bar of a run's timeline.

    Attributes:
        kind: ``step``, ``sleep``, ``hook`` or ``child``.
        label: what it is: ``charge#1 attempt 2``, ``sleep#1``, ``hook:approval#1``, ``audit#1``.
        start: epoch seconds.
        end: epoch seconds, or None while it is open.
        outcome: a step attempt's outcome (``StepAttempt``); ``completed``/``waiting`` for a
            sleep; ``received``/``expired``/``waiting`` for a hook; ``completed``/``failed``/
            ``cancelled``/``running`` for a child.
        child_run_id: the child's run id (child spans only).
    """

    kind: str
    label: str
    start: float
    end: float | None
    outcome: str
    child_run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``kind``, ``label``, ``start``, ``end`` (ISO or null), ``outcome``, ``child_run_id``."""
        return {
            "kind": self.kind,
            "label": self.label,
            "start": iso(self.start),
            "end": iso(self.end),
            "outcome": self.outcome,
            "child_run_id": self.child_run_id,
        }


@dataclass(frozen=True, slots=True)
class Mark:
    """A moment of a run's timeline: ``taken over``, ``resumed``, ``cancel requested``, its end.

    Attributes:
        label: what happened.
        at: epoch seconds.
        seq: the event's place in the log.
    """

    label: str
    at: float
    seq: int

    def to_json(self) -> dict[str, Any]:
        """``label``, ``at`` (ISO), ``seq``."""
        return {"label": self.label, "at": iso(self.at), "seq": self.seq}


def spans(
    events: Sequence[EventRecord], attempts: Sequence[StepAttempt] | None = None
) -> tuple[list[Span], list[Mark]]:
    """The spans of a run's log, in the order they started, and its marks in log order.

    ``attempts``: ``step_attempts(events)`` when the caller has them already.

    Example:
        >>> bars, marks = spans(history.events)
        >>> [(b.kind, b.label, b.outcome) for b in bars][:2]
        [('step', 'charge#1 attempt 1', 'retried'), ('step', 'charge#1 attempt 2', 'completed')]
    """
    found: list[tuple[float, int, Span]] = [
        (
            a.started_at,
            i,
            Span("step", f"{a.step_id} attempt {a.attempt}", a.started_at, a.ended_at, a.outcome),
        )
        for i, a in enumerate(step_attempts(events) if attempts is None else attempts)
    ]
    open_at: dict[tuple[str, str], int] = {}
    marks: list[Mark] = []
    for event in events:
        data = event.payload
        opened = _opened(event.type, data)
        if opened is not None:
            kind, key, span = opened
            open_at[(kind, key)] = len(found)
            found.append((event.created_at, len(found), replace(span, start=event.created_at)))
        elif event.type in _ENDS:
            kind, outcome = _ENDS[event.type]
            key = str(data.get("child_id" if kind == "child" else f"{kind}_id", ""))
            index = open_at.pop((kind, key), None)
            if index is not None:
                start, order, span = found[index]
                found[index] = (start, order, replace(span, end=event.created_at, outcome=outcome))
        if event.type in _MARKS:
            marks.append(Mark(_MARKS[event.type], event.created_at, event.seq))
    found.sort(key=lambda item: (item[0], item[1]))
    return [span for _, _, span in found], marks


def _opened(kind: EventType, data: dict[str, Any]) -> tuple[str, str, Span] | None:
    """The span an event opens (its kind, its key in the log), or None."""
    if kind is EventType.SLEEP_STARTED:
        key = str(data.get("sleep_id", ""))
        return "sleep", key, Span("sleep", key, 0.0, None, "waiting")
    if kind is EventType.HOOK_CREATED:
        key = str(data.get("hook_id", ""))
        return "hook", key, Span("hook", key, 0.0, None, "waiting")
    if kind is EventType.CHILD_WORKFLOW_STARTED:
        key = str(data.get("child_id", ""))
        child = data.get("child_run_id")
        return "child", key, Span("child", key, 0.0, None, "running", str(child) if child else None)
    return None
