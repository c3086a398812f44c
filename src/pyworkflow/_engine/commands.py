"""What workflow code asks for (``Command``) and what one quiet point of it produced (``Turn``).

The activation makes both; the driver commits a turn's events and rows in one append and
launches its commands once they are committed (DESIGN §2.1).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyworkflow.storage.records import EventRecord, NewEvent, NewHook, NewRun

if TYPE_CHECKING:
    from pyworkflow.step import StepDefinition

__all__ = ["Command", "Turn"]


@dataclass(slots=True, eq=False)
class Command:
    """Something workflow code asked for: a step, a timer, a hook or a child run.

    ``args``/``kwargs`` are the live values for a local step; ``attempt`` and ``retry_at`` come
    from the log when a replayed step was already in flight. ``wake_at`` is a sleep's wake time
    or a hook's timeout; ``target`` a child's run id. ``shielded``: issued inside ``shield()``,
    so a cancel request does not interrupt it. ``logged``: its event, when replayed.
    ``started_at``: when a replayed step's latest attempt was logged as started.
    ``interrupted``: how many of a step's attempts were cut short by a crash or a hand-over
    (they spend none of its retries).
    """

    kind: str
    command_id: str
    name: str
    future: asyncio.Future[Any]
    definition: StepDefinition | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    wake_at: float | None = None
    attempt: int = 0
    retry_at: float | None = None
    target: str | None = None
    shielded: bool = False
    logged: EventRecord | None = None
    started_at: float | None = None
    interrupted: int = 0
    user_context: Any = None  # a step's: the StepContext set when the code called it


@dataclass(slots=True)
class Turn:
    """What one quiet point produced.

    ``hooks`` and ``new_runs`` are rows to create with the turn's append (a hook's row, a
    child run); rare, so tuples (an empty one costs nothing, and a turn is made per step).
    ``continued`` is the encoded call of the run a ``continue_as_new`` starts.
    """

    events: list[NewEvent] = field(default_factory=list)
    launch: list[Command] = field(default_factory=list)
    hooks: tuple[NewHook, ...] = ()
    new_runs: tuple[NewRun, ...] = ()
    child_cancels: tuple[dict[str, Any], ...] = ()
    """Payloads of the turn's CHILD_WORKFLOW_CANCEL_REQUESTED events: requests the driver makes
    once the append that logs them has committed (``child_handles``)."""
    finished: bool = False
    result: Any = None
    error: dict[str, Any] | None = None
    cancelled: bool = False
    continued: Any = None

    def merge(self, other: Turn) -> Turn:
        """This turn followed by ``other``; the run's end, if either reached it, is kept."""
        self.events.extend(other.events)
        self.launch.extend(other.launch)
        self.hooks += other.hooks
        self.new_runs += other.new_runs
        self.child_cancels += other.child_cancels
        if other.finished:
            self.finished, self.result, self.error = True, other.result, other.error
            self.cancelled, self.continued = other.cancelled, other.continued
        return self
