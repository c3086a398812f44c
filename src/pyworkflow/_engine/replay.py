"""Reading a run's log for replay, and matching the code's commands against it.

Replay (DESIGN §2.2) needs three things from the log: the commands in the order they were
issued (matched by position: kind and name, never arguments), the outcomes in the order they
were logged (fed back one at a time), and the retry state of steps still in flight.

A patch marker (``patched("x")``, a ``SIDE_EFFECT_RECORDED`` of kind ``"patched"``) is a command
like any other, named by its change id, so a log that has one where the code issues something
else diverges; ``patched`` itself decides, by looking at the next logged command, whether the
run's history predates the change (see ``WorkflowActivation.patched``).

``WORKFLOW_RESUMED`` (a failed run resumed by hand) re-opens the failures that ended the run:
the ``STEP_FAILED`` events logged together with the ``WORKFLOW_FAILED`` it resumes are no
longer outcomes, so those steps run again with a fresh retry budget, while a failure the
workflow caught and handled earlier stays as it was and replays the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyworkflow._engine.event_kinds import OUTCOME_EVENTS, PATCH_KIND
from pyworkflow.events import EventType
from pyworkflow.storage.records import EventRecord, NewEvent

__all__ = [
    "History",
    "StepProgress",
    "command_signature",
    "describe_command",
    "outcome_command_id",
    "read_history",
]

_OUTCOMES = OUTCOME_EVENTS
_COMMANDS = frozenset(
    {
        EventType.SLEEP_STARTED,
        EventType.SIDE_EFFECT_RECORDED,
        EventType.HOOK_CREATED,
        EventType.CHILD_WORKFLOW_STARTED,
        EventType.CHILD_WORKFLOW_CANCEL_REQUESTED,
    }
)
_COMMAND_KINDS = {
    EventType.STEP_STARTED: "step",
    EventType.HOOK_CREATED: "hook",
    EventType.CHILD_WORKFLOW_STARTED: "child",
    EventType.CHILD_WORKFLOW_CANCEL_REQUESTED: "child_cancel",
}
_ENDS = frozenset(
    {
        EventType.WORKFLOW_COMPLETED,
        EventType.WORKFLOW_FAILED,
        EventType.WORKFLOW_CANCELLED,
        EventType.WORKFLOW_CONTINUED_AS_NEW,
    }
)


@dataclass(slots=True)
class StepProgress:
    """What the log says about a step's attempts since the run was last resumed."""

    attempt: int = 0
    retry_at: float | None = None
    started_at: float | None = None
    """When the latest attempt's STEP_STARTED was logged (a step sent away is due by then)."""
    interrupted: int = 0
    """Attempts cut short by a crash or a hand-over (WORKFLOW_INTERRUPTED): they ran again as
    attempts of their own, but they spend none of the step's retries."""


@dataclass(slots=True)
class History:
    """A run's log, sorted for replay."""

    commands: list[EventRecord] = field(default_factory=list)
    outcomes: list[EventRecord] = field(default_factory=list)
    steps: dict[str, StepProgress] = field(default_factory=dict)
    last_seq: int = 0
    cancel_requested: bool = False
    ended: bool = False
    """The log records the run's end (and no ``resume`` re-opened it)."""


def describe_command(kind: str, name: str) -> str:
    """How a command reads in a NonDeterminismError: ``step 'charge'``, ``sleep``, ``now()``."""
    if kind in ("step", "hook"):
        return f"{kind} {name!r}"
    if kind == "child":
        return f"child workflow {name!r}"
    if kind == "child_cancel":
        return f"cancel of child workflow {name!r}"
    if kind == "sleep":
        return kind
    if kind == PATCH_KIND:
        return f"patched({name!r})"
    return f"{name}()"


def command_signature(event: EventRecord | NewEvent) -> tuple[str, str]:
    """(kind, name) of a logged command, as compared with a new one.

    A patch marker's name is its change id, so ``patched("a")`` and ``patched("b")`` differ.
    """
    payload = event.payload
    kind = _COMMAND_KINDS.get(event.type)
    if kind is not None:
        return kind, payload["name"]
    if event.type is EventType.SLEEP_STARTED:
        return "sleep", "sleep"
    if event.type is EventType.SIDE_EFFECT_RECORDED:
        if payload["kind"] == PATCH_KIND:
            return PATCH_KIND, payload["change_id"]
        return "side_effect", payload["kind"]
    return event.type.value, str(payload.get("name", ""))


def outcome_command_id(event: EventRecord | NewEvent) -> str:
    """The id of the command an outcome event resolves (``name#n``, ``sleep#n``, ...)."""
    payload = event.payload
    for key in ("step_id", "sleep_id", "hook_id", "child_id"):
        if key in payload:
            return str(payload[key])
    return ""


def _reopened_failures(events: Sequence[EventRecord]) -> set[int]:
    """Seqs of STEP_FAILED events logged with a WORKFLOW_FAILED that was later resumed."""
    reopened: set[int] = set()
    for i, event in enumerate(events):
        if event.type is not EventType.WORKFLOW_RESUMED:
            continue
        j = i - 1
        while j >= 0 and events[j].type is not EventType.WORKFLOW_FAILED:
            j -= 1
        j -= 1
        while j >= 0 and events[j].type is EventType.STEP_FAILED:
            reopened.add(events[j].seq)
            j -= 1
    return reopened


def read_history(events: Sequence[EventRecord]) -> History:
    """Sort a run's events into commands, outcomes and step progress."""
    history = History(last_seq=events[-1].seq if events else 0)
    reopened = (
        _reopened_failures(events)
        if any(e.type is EventType.WORKFLOW_RESUMED for e in events)
        else set()
    )
    seen_steps: set[str] = set()
    for event in events:
        kind = event.type
        payload: dict[str, Any] = event.payload
        if kind is EventType.STEP_STARTED:
            step_id = payload["step_id"]
            progress = history.steps.setdefault(step_id, StepProgress())
            progress.attempt, progress.retry_at = payload["attempt"], None
            progress.started_at = event.created_at
            if step_id not in seen_steps:
                seen_steps.add(step_id)
                history.commands.append(event)
        elif kind is EventType.STEP_RETRYING:
            history.steps[payload["step_id"]].retry_at = payload["retry_at"]
        elif kind in _OUTCOMES:
            if event.seq in reopened:
                history.steps[payload["step_id"]] = StepProgress()
                continue
            if kind is EventType.CANCELLATION_REQUESTED:
                history.cancel_requested = True
            history.outcomes.append(event)
        elif kind in _COMMANDS:
            history.commands.append(event)
        elif kind in _ENDS:
            history.ended = True
        elif kind is EventType.WORKFLOW_RESUMED:
            history.ended = False
        elif kind is EventType.WORKFLOW_INTERRUPTED:
            for cut in payload.get("steps", ()):
                history.steps.setdefault(cut["step_id"], StepProgress()).interrupted += 1
    return history
