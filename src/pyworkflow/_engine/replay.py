"""Reading a run's log for replay, and matching the code's commands against it.

Replay (DESIGN §2.2) needs three things from the log: the commands in the order they were
issued (matched by position: kind and name, never arguments), the outcomes in the order they
were logged (fed back one at a time), and the retry state of steps still in flight.
``LogCursor`` then walks those commands as the code issues its own, and keeps the first
divergence.

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
from typing import TYPE_CHECKING, Any

from pyworkflow._engine.event_kinds import OUTCOME_EVENTS, PATCH_KIND
from pyworkflow.events import EventType
from pyworkflow.exceptions import NonDeterminismError
from pyworkflow.storage.records import EventRecord, NewEvent

if TYPE_CHECKING:
    from pyworkflow._engine.commands import Command

__all__ = [
    "History",
    "LogCursor",
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


_PAST_THE_LOG = History()
"""The history of a cursor past its log (shared, never written to)."""


class LogCursor:
    """Where a run's workflow code stands in its log during replay.

    The activation asks it, for every command the code issues, whether the log has that
    command at the same position; it numbers positions, walks the log's commands in order and
    keeps the first divergence. Kept apart from the activation so that all that decides "is
    this replay or new code?" reads in one place.

    ``position`` counts the commands issued so far, logged or new (a ``patched`` that answers
    False takes none). ``divergence`` is the first mismatch, or None; once set, it never changes.
    """

    __slots__ = ("_cursor", "_history", "_outcomes_left", "_run_id", "divergence", "position")

    def __init__(self, run_id: str) -> None:
        self._run_id = run_id
        self._history = _PAST_THE_LOG
        self._cursor = 0
        self._outcomes_left = 0
        self.position = 0
        self.divergence: NonDeterminismError | None = None

    def start(self, history: History) -> None:
        """Replay ``history`` from its first command, with all its outcomes still to feed."""
        self._history, self._cursor = history, 0
        self._outcomes_left = len(history.outcomes)

    def consume_outcome(self) -> None:
        """Count one logged outcome as fed back to the code (see :meth:`replaying`)."""
        self._outcomes_left -= 1

    def finish(self) -> None:
        """End the replay: every logged command must have been issued again by now.

        Each one followed, in the log, only outcomes that were all fed back. If the log is
        consumed and records no end, the code runs past it from here on.
        """
        self._outcomes_left = 0
        if self.divergence is None and self.next_logged() is not None:
            self.report_unissued()
        if self.divergence is None and not self._history.ended:
            # Let the log's copy go: a run in flight is that many objects fewer for the
            # garbage collector to walk.
            self._history, self._cursor = _PAST_THE_LOG, 0

    def next_logged(self) -> EventRecord | None:
        """The next logged command not yet matched, or None past the log."""
        commands = self._history.commands
        return commands[self._cursor] if self._cursor < len(commands) else None

    def replaying(self) -> bool:
        """True while the log goes on: commands or outcomes still to replay, or a logged end.

        Past that point the code issues what the log never saw, i.e. it runs as new code.
        """
        history = self._history
        return self._cursor < len(history.commands) or self._outcomes_left > 0 or history.ended

    def match(self, command: Command) -> bool:
        """Give ``command`` the next position; True if it is new (past the log).

        False if the log has it there: ``command.logged`` is then its event, and a step in flight
        gets its attempt and retry state from the log. False too on a mismatch, recorded in
        ``divergence`` (``command.logged`` stays None).
        """
        position = self.position
        self.position = position + 1
        # next_logged, inlined: this runs once per command the code issues.
        commands = self._history.commands
        if self._cursor >= len(commands):
            return True
        logged = commands[self._cursor]
        if command_signature(logged) != (command.kind, command.name):
            self._diverge(position, logged, describe_command(command.kind, command.name))
            return False
        self._cursor += 1
        command.logged = logged
        payload = logged.payload
        if command.kind == "sleep":
            command.wake_at = payload["wake_at"]
        else:
            steps = self._history.steps
            progress = steps.get(command.command_id) if command.kind == "step" else None
            if progress is not None:
                command.attempt, command.retry_at = progress.attempt, progress.retry_at
                command.started_at = progress.started_at
                command.interrupted = progress.interrupted
        return False

    def take(self, kind: str, name: str) -> EventRecord | None:
        """Give a command with no outcome (a side effect) the next position; its logged event.

        None past the log, or on a mismatch, which is recorded in ``divergence``.
        """
        position = self.position
        self.position = position + 1
        logged = self.next_logged()
        if logged is None:
            return None
        if command_signature(logged) != (kind, name):
            self._diverge(position, logged, describe_command(kind, name))
            return None
        self._cursor += 1
        return logged

    def take_marker(self, change_id: str) -> bool:
        """Consume the next logged command if it is the marker of ``change_id``."""
        logged = self.next_logged()
        if logged is None or command_signature(logged) != (PATCH_KIND, change_id):
            return False
        self._cursor += 1
        self.position += 1
        return True

    def report_unissued(self) -> None:
        """Record that the code no longer issues the first logged command still unmatched."""
        self._diverge(self._cursor, self.next_logged(), None)

    def _diverge(self, position: int, logged: EventRecord | None, issued: str | None) -> None:
        if self.divergence is None:
            described = describe_command(*command_signature(logged)) if logged else None
            self.divergence = NonDeterminismError(self._run_id, position, described, issued)
