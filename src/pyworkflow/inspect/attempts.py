"""The attempts of a run's steps, read from its log: when each started, how it ended.

An attempt ends ``completed``, ``retried`` (failed and retried later), ``failed`` (for good) or
``interrupted``: its worker stopped before it ended. The log says so in three ways: a
WORKFLOW_INTERRUPTED naming the attempts it cut short, a second STEP_STARTED of the same step
while one is open, or the run ending while an attempt is open (e.g. cancelled mid-step). An
attempt with none of these is still ``running``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyworkflow.events import EventType
from pyworkflow.inspect.values import iso
from pyworkflow.storage import EventRecord

__all__ = ["StepAttempt", "step_attempts"]

_RUN_ENDED = frozenset(
    {
        EventType.WORKFLOW_COMPLETED,
        EventType.WORKFLOW_FAILED,
        EventType.WORKFLOW_CANCELLED,
        EventType.WORKFLOW_CONTINUED_AS_NEW,
    }
)


@dataclass(frozen=True, slots=True)
class StepAttempt:
    """One attempt of one step, from its STEP_STARTED to what ended it.

    Attributes:
        step_id: the step's id in its run, ``name#n``.
        name: the step's name.
        attempt: 1, 2, ...
        started_at: epoch seconds.
        ended_at: epoch seconds, or None while it runs.
        outcome: ``running``, ``completed``, ``retried``, ``failed`` or ``interrupted``.
        error: ``{"type", "message", "traceback"}`` of a retried or failed attempt, else None.
    """

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

    def to_json(self) -> dict[str, Any]:
        """``step_id``, ``name``, ``attempt``, ``started_at``, ``ended_at``, ``duration``, ...

        ... ``outcome`` and ``error``; times ISO, the duration float seconds (or null).
        """
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
    """Every step attempt the log records, in the order they started (module docstring)."""
    # Mutable rows while reading (a long run has thousands); frozen attempts at the end.
    rows: list[list[Any]] = []  # [step_id, name, attempt, started_at, ended_at, outcome, error]
    open_at: dict[str, int] = {}  # step id -> index in rows of its open attempt

    def close(step_id: str, at: float, outcome: str, error: Any = None) -> None:
        index = open_at.pop(step_id, None)
        if index is not None:
            row = rows[index]
            row[4], row[5], row[6] = at, outcome, error if isinstance(error, dict) else None

    for event in events:
        kind = event.type
        data = event.payload
        if kind is EventType.STEP_STARTED:
            step_id = str(data.get("step_id", ""))
            # A second start of an open attempt: the worker running the first one stopped.
            if step_id in open_at:
                close(step_id, event.created_at, "interrupted")
            open_at[step_id] = len(rows)
            name = str(data.get("name", step_id.partition("#")[0]))
            attempt = int(data.get("attempt", 1))
            rows.append([step_id, name, attempt, event.created_at, None, "running", None])
        elif kind is EventType.STEP_COMPLETED:
            close(str(data.get("step_id", "")), event.created_at, "completed")
        elif kind is EventType.STEP_RETRYING:
            close(str(data.get("step_id", "")), event.created_at, "retried", data.get("error"))
        elif kind is EventType.STEP_FAILED:
            close(str(data.get("step_id", "")), event.created_at, "failed", data.get("error"))
        elif kind is EventType.WORKFLOW_INTERRUPTED:
            # Its worker died (or let the run go) mid-attempt; the next attempt re-runs it.
            for cut in data.get("steps", ()):
                close(str(cut.get("step_id", "")), event.created_at, "interrupted")
        elif kind in _RUN_ENDED:
            # e.g. cancelled while a step ran: that attempt's outcome was never logged.
            for open_id in list(open_at):
                close(open_id, event.created_at, "interrupted")
    return [StepAttempt(*row) for row in rows]
