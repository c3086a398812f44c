"""OpenTelemetry spans for the turns of workflow runs and the attempts of their steps.

Needs the ``otel`` extra (``pip install "pyworkflow-durable[otel]"``, which brings
``opentelemetry-api``; your application installs the SDK and an exporter). Turn it on with
``configure(tracing=True)``, with ``PYWORKFLOW_TRACING=1`` in a worker's environment, or with
``instrument()`` (which also takes a tracer provider of your own). Without it pyworkflow
imports nothing of OpenTelemetry and creates no spans.

Spans:

- ``pyworkflow.run``: one turn of a run, from the moment a process takes the run (its start,
  a wake-up after a sleep, a take-over from a dead worker) until it lets the run go. Attributes
  ``pyworkflow.run_id``, ``pyworkflow.workflow`` and, when the run is let go,
  ``pyworkflow.status`` (``completed``, ``failed``, ``cancelled``, ``continued_as_new``,
  ``suspended``, ...). A failed run's span has status ERROR and an ``exception`` event with the
  error's type, message and traceback. A run that sleeps past the horizon has one such span per
  turn.
- ``pyworkflow.step``: one attempt of a step, a child of its turn's span. Attributes
  ``pyworkflow.run_id``, ``pyworkflow.workflow``, ``pyworkflow.step_id`` (``name#n``),
  ``pyworkflow.step_name`` and ``pyworkflow.attempt`` (1 for the first). A failed attempt has
  status ERROR with the exception recorded, and ``pyworkflow.retry_in`` (seconds) when another
  attempt follows. Spans your step code creates are children of it.

The first turn of a run started with ``start()`` or ``run()`` is a child of the span current
where it was called; turns a worker claims later begin traces of their own.

Example:
    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> provider = TracerProvider()  # with your exporter's span processor added
    >>> instrument(tracer_provider=provider)
"""

from __future__ import annotations

import asyncio
import contextvars
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from pyworkflow import __version__
from pyworkflow._engine import tracing as _seam

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError(
        "pyworkflow.tracing needs OpenTelemetry: pip install 'pyworkflow-durable[otel]'"
    ) from exc

if TYPE_CHECKING:
    from pyworkflow._engine.context import StepInfo

__all__ = ["instrument", "is_instrumented", "uninstrument"]


def instrument(tracer_provider: trace.TracerProvider | None = None) -> None:
    """Emit spans for every run turn and step attempt of this process from now on.

    Calling it again replaces the provider. ``configure(tracing=True)`` calls it with the
    global provider.

    Example:
        >>> instrument()  # spans go to the provider set with trace.set_tracer_provider

    Args:
        tracer_provider: where spans go; the global provider (``trace.get_tracer_provider()``,
            also one set after this call) when None.
    """
    tracer = trace.get_tracer("pyworkflow", __version__, tracer_provider=tracer_provider)
    _seam.install(_OpenTelemetryTracer(tracer))


def uninstrument() -> None:
    """Stop emitting spans (turns and attempts already under way finish theirs)."""
    _seam.install(None)


def is_instrumented() -> bool:
    """True while this process emits spans for runs and steps."""
    return isinstance(_seam.current, _OpenTelemetryTracer)


class _OpenTelemetryTracer:
    """The engine's ``Tracer`` (see ``pyworkflow._engine.tracing``) on OpenTelemetry."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def turn(self, run_id: str, workflow: str) -> _TurnSpan:
        attributes = {"pyworkflow.run_id": run_id, "pyworkflow.workflow": workflow}
        return _TurnSpan(self._tracer.start_span("pyworkflow.run", attributes=attributes))

    def attempt(self, step: StepInfo) -> _AttemptSpan:
        attributes: dict[str, str | int] = {
            "pyworkflow.run_id": step.run_id,
            "pyworkflow.workflow": step.workflow_name,
            "pyworkflow.step_id": step.step_id,
            "pyworkflow.step_name": step.step_name,
            "pyworkflow.attempt": step.attempt,
        }
        return _AttemptSpan(self._tracer.start_span("pyworkflow.step", attributes=attributes))

    def carry(self, into: contextvars.Context) -> None:
        # The attempt's task starts from an empty context; its span's parent is the turn's.
        # The token is never detached: the context ends with the task.
        into.run(otel_context.attach, otel_context.get_current())


class _CurrentSpan:
    """A span made current on entry and ended on exit; an escaping exception marks it failed.

    Cancellation is not a failure: it is how a worker hands its runs back on shutdown.
    """

    __slots__ = ("_span", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self._token: object = None

    def __enter__(self) -> Self:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None and not isinstance(exc, asyncio.CancelledError):
                self._failed(exc)
        finally:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._span.end()

    def _failed(self, exc: BaseException) -> None:
        self._span.record_exception(exc)
        self._span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


class _TurnSpan(_CurrentSpan):
    """``pyworkflow.run``: one turn of a run."""

    __slots__ = ()

    def released(self, status: str, error: dict[str, Any] | None) -> None:
        """Record how the run was let go; a failed run's error as an ``exception`` event."""
        self._span.set_attribute("pyworkflow.status", status)
        if error is None:
            return
        kind, message = str(error.get("type", "")), str(error.get("message", ""))
        self._span.add_event(
            "exception",
            {
                "exception.type": kind,
                "exception.message": message,
                "exception.stacktrace": str(error.get("traceback", "")),
            },
        )
        self._span.set_status(trace.Status(trace.StatusCode.ERROR, f"{kind}: {message}"))


class _AttemptSpan(_CurrentSpan):
    """``pyworkflow.step``: one attempt of a step."""

    __slots__ = ()

    def finished(self, error: BaseException | None, retry_in: float | None) -> None:
        """Mark a failed attempt, and whether (and how soon) another one follows."""
        if error is None:
            return
        self._failed(error)
        if retry_in is not None:
            self._span.set_attribute("pyworkflow.retry_in", retry_in)
