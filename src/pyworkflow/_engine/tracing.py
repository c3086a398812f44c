"""The engine's seam for tracing: where a turn and a step attempt begin and end, no backend.

The driver wraps each turn of a run in ``turn(...)`` and tells the returned ``TurnTrace`` how
the run was let go; ``run_attempt`` wraps each step attempt in the tracer's ``attempt(...)``.
Attempts that run in a task of their own get a fresh context (see ``attempt_context``), so the
tracer's ``carry`` copies whatever it needs to find the turn it belongs to into it.

Nothing is installed by default: the hooks then cost one read of a module global and the engine
behaves exactly as without them. ``pyworkflow.tracing`` installs the OpenTelemetry tracer; the
engine never imports it (DESIGN §2.8: the core knows no backend).
"""

from __future__ import annotations

import contextvars
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pyworkflow._engine.context import StepInfo

__all__ = ["NO_TRACE", "AttemptTrace", "Tracer", "TurnTrace", "current", "install", "turn"]


class TurnTrace(Protocol):
    """One turn of a run, as the tracer sees it."""

    def released(self, status: str, error: dict[str, Any] | None) -> None:
        """The driver let the run go with ``status``; ``error`` is a failed run's record."""


class AttemptTrace(Protocol):
    """One attempt of a step, as the tracer sees it."""

    def finished(self, error: BaseException | None, retry_in: float | None) -> None:
        """The attempt ended: ``error`` if it raised, ``retry_in`` if another one follows."""


class Tracer(Protocol):
    """What a tracing backend implements; ``install`` one to turn tracing on."""

    def turn(self, run_id: str, workflow: str) -> AbstractContextManager[TurnTrace]:
        """Entered around one turn of a run, in the driver's task."""

    def attempt(self, step: StepInfo) -> AbstractContextManager[AttemptTrace]:
        """Entered around one attempt of a step, in the task that runs it."""

    def carry(self, into: contextvars.Context) -> None:
        """Copy the current trace position into ``into``, an attempt task's fresh context."""


class _NoTrace:
    """The turn trace of an untraced run: does nothing, for the price of a method call."""

    def __enter__(self) -> _NoTrace:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def released(self, status: str, error: dict[str, Any] | None) -> None:
        """Nothing to record."""


_NO_CONTEXT = _NoTrace()
NO_TRACE: TurnTrace = _NO_CONTEXT
"""The turn trace of an untraced run."""

current: Tracer | None = None
"""The installed tracer, or None (the default: no tracing)."""


def install(tracer: Tracer | None) -> None:
    """Trace the turns and step attempts of this process with ``tracer`` (None: stop)."""
    global current
    current = tracer


def turn(run_id: str, workflow: str) -> AbstractContextManager[TurnTrace]:
    """The context manager the driver enters around a turn (a no-op without a tracer)."""
    tracer = current
    return _NO_CONTEXT if tracer is None else tracer.turn(run_id, workflow)
