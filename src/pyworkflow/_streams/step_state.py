"""What one execution of a stream step decides, and the primitives it decides with.

An execution (its start, or one delivered signal) runs inside the driver's batch step, or as
the step ``stream:<name>`` when it is retried. The primitives (``set_result``, ``terminate``,
``suspend``, ``save_checkpoint`` ...) only note their decision in the execution's state; the
execution returns the decisions, which are logged as (part of) its step's result, and the
driver's next batch stores them on the subscription. So a decision counts exactly when that
result is logged: a crash before that runs the execution again (a step is at-least-once) and
nothing of the lost attempt is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyworkflow._engine.context import StepInfo, current_step, step_info
from pyworkflow.events import StreamStepStatus
from pyworkflow.exceptions import NotInStreamStepError

if TYPE_CHECKING:
    from pyworkflow._streams.definitions import StreamStepDefinition
    from pyworkflow._streams.signals import Signal

__all__ = [
    "BATCH_STEP",
    "StepState",
    "StreamStepContext",
    "current_stream_step",
    "execution",
    "get_checkpoint",
    "get_current_signal",
    "save_checkpoint",
    "set_result",
    "suspend",
    "terminate",
]


@dataclass
class StepState:
    """One execution of a stream step: its inputs and the decisions it made so far."""

    stream_run_id: str
    stream: str
    step_name: str
    signal: Signal | None
    checkpoint: Any
    status: StreamStepStatus
    detail: str | None = None
    resume_signals: list[str] | None = None
    result: Any = None
    set_result: bool = False
    set_checkpoint: bool = False
    emits: int = 0
    schedules: int = 0
    resumed: bool = field(default=False)

    def outcome(self) -> dict[str, Any]:
        """The decisions, as the plain dict the execution step returns (and the log keeps)."""
        return {
            "status": self.status.value,
            "detail": self.detail,
            "resume_signals": self.resume_signals,
            "result": self.result,
            "set_result": self.set_result,
            "checkpoint": self.checkpoint,
            "set_checkpoint": self.set_checkpoint,
        }


current_stream_step: ContextVar[StepState | None] = ContextVar(
    "pyworkflow_stream_step", default=None
)


def _state(what: str) -> StepState:
    state = current_stream_step.get()
    if state is None:
        raise NotInStreamStepError(what)
    return state


async def get_current_signal() -> Signal | None:
    """The signal this execution of the stream step runs for; None at its start.

    Raises:
        NotInStreamStepError: outside a running stream step.
    """
    return _state("get_current_signal()").signal


async def set_result(value: Any) -> None:
    """Publish ``value`` as the step's result (``StreamWorkflowResult.get_result(name)``).

    Raises:
        NotInStreamStepError: outside a running stream step.
    """
    state = _state("set_result()")
    state.result, state.set_result = value, True


async def terminate() -> None:
    """End the stream step: it is never run again (its result, if any, stays).

    Raises:
        NotInStreamStepError: outside a running stream step.
    """
    state = _state("terminate()")
    state.status, state.detail, state.resume_signals = StreamStepStatus.TERMINATED, None, None


async def suspend(reason: str = "suspended", resume_signals: list[str] | None = None) -> None:
    """Park the step until one of ``resume_signals`` (default: its own types) arrives.

    While suspended, other signals are passed over (not delivered to it later). When every
    step of the stream run is suspended or ended, the stream run is ``suspended``: the parent
    workflow keeps waiting, holding no worker, until a resume signal comes.

    Raises:
        NotInStreamStepError: outside a running stream step.
    """
    state = _state("suspend()")
    state.status, state.detail = StreamStepStatus.SUSPENDED, reason or "suspended"
    state.resume_signals = None if resume_signals is None else [str(s) for s in resume_signals]


async def save_checkpoint(data: Any) -> None:
    """Keep ``data`` for the step's next executions (``get_checkpoint()``).

    Raises:
        NotInStreamStepError: outside a running stream step.
    """
    state = _state("save_checkpoint()")
    state.checkpoint, state.set_checkpoint = data, True


async def get_checkpoint() -> Any:
    """The data last kept with ``save_checkpoint`` (in this execution or before), or None.

    Raises:
        NotInStreamStepError: outside a running stream step.
    """
    return _state("get_checkpoint()").checkpoint


class StreamStepContext:
    """What an ``on_signal(signal, ctx)`` callback decides with.

    Doing nothing acknowledges the signal: the step stays as it was and is not run.

    Attributes:
        status: the step's status before this signal (``waiting`` or ``suspended``).
        run_id: the stream run's id (its ``stream_run_id``).
        stream_id: the stream's name.
        step_name: the stream step's name.
    """

    def __init__(self, state: StepState) -> None:
        self._state = state
        self.status = state.status
        self.run_id = state.stream_run_id
        self.stream_id = state.stream
        self.step_name = state.step_name

    async def resume(self) -> None:
        """Run the step's lifecycle function with this signal as its current signal."""
        self._state.resumed = True

    async def terminate(self) -> None:
        """End the step without running it."""
        state = self._state
        state.status, state.detail, state.resume_signals = StreamStepStatus.TERMINATED, None, None

    async def cancel(self, reason: str | None = None) -> None:
        """Cancel the step (terminal) without running it, keeping ``reason``."""
        state = self._state
        state.status, state.detail = StreamStepStatus.CANCELLED, reason or "cancelled"
        state.resume_signals = None

    async def suspend(
        self, reason: str = "suspended", resume_signals: list[str] | None = None
    ) -> None:
        """Park the step without running it; see ``suspend()``."""
        state = self._state
        state.status, state.detail = StreamStepStatus.SUSPENDED, reason or "suspended"
        state.resume_signals = None if resume_signals is None else [str(s) for s in resume_signals]


BATCH_STEP = "pyworkflow.stream.batch"
"""The driver's step that runs the first execution of each delivery of its batch."""


def _execution_info(definition: StreamStepDefinition, signal: dict[str, Any] | None) -> StepInfo:
    """What ``get_step_context()`` tells an execution: the execution's own id and attempt.

    Its id (``stream:<name>@<signal id>``, ``@start`` for the start) and so its idempotency
    key are the same in its batch and in its retries, which run as the step ``stream:<name>``:
    its attempt there is the step's attempt + 1 (the batch ran the first).
    """
    info = step_info()
    first = info.step_name == BATCH_STEP
    return StepInfo(
        info.run_id,
        info.workflow_name,
        f"{definition.step_name}@{'start' if signal is None else signal['signal_id']}",
        definition.step_name,
        1 if first else info.attempt + 1,
        0 if first else info.interrupted,
        user_context=info.user_context,
    )


def execution(
    definition: StreamStepDefinition,
) -> Callable[..., Coroutine[Any, Any, dict[str, Any]]]:
    """The function that runs one execution of ``definition`` in a step; returns its outcome."""

    async def execute(
        stream_run_id: str, signal: dict[str, Any] | None, checkpoint: Any, status: str
    ) -> dict[str, Any]:
        from pyworkflow._streams.signals import Signal  # a cycle at import time otherwise

        delivered = None if signal is None else Signal.from_parts(signal)
        before = StreamStepStatus(status)
        info = _execution_info(definition, signal)
        state = StepState(
            stream_run_id=stream_run_id,
            stream=definition.stream,
            step_name=definition.name,
            signal=delivered,
            checkpoint=checkpoint,
            # A start leaves the step waiting unless its lifecycle decides otherwise.
            status=StreamStepStatus.WAITING if before is StreamStepStatus.PENDING else before,
        )
        token = current_stream_step.set(state)
        info_token = current_step.set(info)
        try:
            if delivered is None or definition.on_signal is None:
                state.resumed = True
            else:
                await definition.on_signal(delivered, StreamStepContext(state))
            if state.resumed:
                if state.status is before and before is StreamStepStatus.SUSPENDED:
                    state.status, state.detail, state.resume_signals = (
                        StreamStepStatus.WAITING,
                        None,
                        None,
                    )
                if not state.status.is_terminal:
                    await definition.fn()
        finally:
            current_step.reset(info_token)
            current_stream_step.reset(token)
        return state.outcome()

    execute.__qualname__ = f"stream_step.{definition.name}"
    execute.__module__ = definition.fn.__module__
    return execute
