"""``@stream_workflow`` and ``@stream_step``: definitions, validated at decoration time.

A stream workflow names a channel (its ``name``); every stream step with that ``stream=``
subscribes to it. One execution of a stream step (its start, or one delivered signal) runs
inside the driving run's batch step, its outcome logged with the batch (``driver.py``); an
execution that raised runs again as an ordinary step named ``stream:<name>``, with the retries
it has left.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyworkflow.exceptions import StreamDefinitionError
from pyworkflow.retries import RetryPolicy
from pyworkflow.step import step as step_decorator

__all__ = [
    "OnSignal",
    "StreamStepDefinition",
    "StreamWorkflow",
    "execution_of",
    "get_stream_workflow",
    "runner_of",
    "steps_of_stream",
    "stream_step",
    "stream_workflow",
]

OnSignal = Callable[[Any, Any], Awaitable[None]]
"""``on_signal(signal, ctx)``: decides what a delivered signal does (``StreamStepContext``)."""

_workflows: dict[str, StreamWorkflow] = {}
_steps: dict[str, StreamStepDefinition] = {}
_runners: dict[str, Callable[..., Coroutine[Any, Any, Any]]] = {}  # step name -> its @step
_executions: dict[str, Callable[..., Coroutine[Any, Any, Any]]] = {}  # the same, unwrapped
_by_stream: dict[str, list[StreamStepDefinition]] = {}  # steps_of_stream's answers


def _origin(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)!s}"


@dataclass(frozen=True, eq=False)
class StreamWorkflow:
    """A registered stream workflow: pass it to ``run_stream_workflow``.

    Attributes:
        fn: its body, workflow code run once when a stream run starts (after its
            subscriptions exist): the place to ``emit`` the first signal.
        name: the stream (channel) name.
    """

    fn: Callable[[], Coroutine[Any, Any, Any]]
    name: str

    @property
    def __name__(self) -> str:
        return self.name


@dataclass(frozen=True, eq=False)
class StreamStepDefinition:
    """A registered stream step.

    Attributes:
        fn: its lifecycle function, run at its start and on each resume.
        name: its name (the function's unless given), unique among stream steps.
        stream: the stream it subscribes to.
        signal_types: the signal types it reacts to.
        schemas: pydantic models bound to some of them: payloads are validated.
        on_signal: the callback deciding what each delivered signal does, or None (resume).
        step_name: the ordinary step that runs an execution again after it raised
            (``stream:<name>``).
        retry: its executions' retry policy (``max_retries``).
    """

    fn: Callable[[], Coroutine[Any, Any, Any]]
    name: str
    stream: str
    signal_types: tuple[str, ...]
    schemas: Mapping[str, Any] = field(default_factory=dict)
    on_signal: OnSignal | None = None
    step_name: str = ""
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_retries=3))


def _where(fn: Any) -> str:
    return _origin(fn)


def stream_workflow(
    name: str | Callable[..., Any] | None = None,
) -> Any:
    """Register an async function as a stream workflow: a named channel stream steps join.

    Example:
        >>> @stream_workflow(name="agent_comms")
        ... async def agent_comms() -> None:
        ...     await emit("agent_comms", "agent.started", {})

    Args:
        name: the stream's name; defaults to the function's ``__name__``.

    Raises:
        StreamDefinitionError: not an async function, a bad name, or the name taken by
            another function.
    """

    def decorate(fn: Callable[[], Coroutine[Any, Any, Any]]) -> StreamWorkflow:
        if not inspect.iscoroutinefunction(fn):
            raise StreamDefinitionError(
                f"@stream_workflow needs an `async def` function; {_where(fn)} is not one"
            )
        definition = StreamWorkflow(fn=fn, name=given or fn.__name__)
        existing = _workflows.get(definition.name)
        if existing is not None and _origin(existing.fn) != _origin(fn):
            raise StreamDefinitionError(
                f"two stream workflows are named {definition.name!r}: {_origin(existing.fn)} "
                f"and {_origin(fn)}; pass @stream_workflow(name=...) to tell them apart"
            )
        _workflows[definition.name] = definition
        from pyworkflow._streams.driver import register  # the driver needs the definitions

        register()
        return definition

    if callable(name):
        given = None
        return decorate(name)
    if name is not None and (not isinstance(name, str) or not name):
        raise StreamDefinitionError(f"@stream_workflow(name=...) must be a string, not {name!r}")
    given = name
    return decorate


def _signal_spec(
    where: str, signals: Iterable[str] | Mapping[str, Any]
) -> tuple[tuple[str, ...], dict[str, Any]]:
    if isinstance(signals, str):
        raise StreamDefinitionError(
            f"{where}: signals must be a list of signal types, not the string {signals!r}"
        )
    schemas: dict[str, Any] = {}
    if isinstance(signals, Mapping):
        for signal_type, schema in signals.items():
            if schema is not None and not (
                isinstance(schema, type) and hasattr(schema, "model_validate")
            ):
                raise StreamDefinitionError(
                    f"{where}: the schema of signal {signal_type!r} must be a pydantic model "
                    f"class or None, not {schema!r}"
                )
            if schema is not None:
                schemas[signal_type] = schema
        types = tuple(signals)
    else:
        types = tuple(signals)
    for signal_type in types:
        if not isinstance(signal_type, str) or not signal_type:
            raise StreamDefinitionError(f"{where}: a signal type must be a non-empty string")
    if not types:
        raise StreamDefinitionError(f"{where}: a stream step needs at least one signal type")
    return types, schemas


def stream_step(
    *,
    stream: str,
    signals: Iterable[str] | Mapping[str, Any],
    on_signal: OnSignal | None = None,
    name: str | None = None,
    max_retries: int = 3,
) -> Callable[[Callable[[], Coroutine[Any, Any, Any]]], StreamStepDefinition]:
    """Register an async function as a stream step subscribed to ``stream``.

    It runs once when its stream run starts (``get_current_signal()`` is None) and again for
    each matching signal that ``on_signal`` resumes it for (by default, every one), until it
    calls ``terminate()``. Each execution runs in the process driving the stream run, inside
    a step of its run (one per batch of signals): its outcome is logged with the batch and it
    never runs again once logged; one that raises is retried up to ``max_retries`` times, as a
    step of its own (``stream:<name>``), after the delays of ``@step``'s exponential policy.

    Example:
        >>> @stream_step(stream="agent_comms", signals=["task.assigned"])
        ... async def worker() -> None:
        ...     signal = await get_current_signal()
        ...     if signal is not None:
        ...         await set_result({"task_id": signal.payload["task_id"]})
        ...         await terminate()

    Args:
        stream: the stream workflow's name.
        signals: signal types, or ``{type: PydanticModel}`` to validate their payloads.
        on_signal: ``async (signal, ctx) -> None`` deciding what each signal does.
        name: the step's name; defaults to the function's ``__name__``.
        max_retries: retries of one execution after an exception.

    Raises:
        StreamDefinitionError: not an async function, or a bad option.
    """

    def decorate(fn: Callable[[], Coroutine[Any, Any, Any]]) -> StreamStepDefinition:
        where = _where(fn)
        if not inspect.iscoroutinefunction(fn):
            raise StreamDefinitionError(
                f"@stream_step needs an `async def` function; {where} is not one"
            )
        if not isinstance(stream, str) or not stream:
            raise StreamDefinitionError(f"{where}: stream must be a non-empty string")
        if on_signal is not None and not callable(on_signal):
            raise StreamDefinitionError(f"{where}: on_signal must be callable, not {on_signal!r}")
        types, schemas = _signal_spec(where, signals)
        step_name = name or fn.__name__
        existing = _steps.get(step_name)
        if existing is not None and _origin(existing.fn) != _origin(fn):
            raise StreamDefinitionError(
                f"two stream steps are named {step_name!r}: {_origin(existing.fn)} and "
                f"{where}; pass @stream_step(name=...) to tell them apart"
            )
        retry = RetryPolicy.from_options(max_retries, "exponential", where=where)
        definition = StreamStepDefinition(
            fn=fn,
            name=step_name,
            stream=stream,
            signal_types=types,
            schemas=schemas,
            on_signal=on_signal,
            step_name=f"stream:{step_name}",
            retry=retry,
        )
        _steps[step_name] = definition
        _by_stream.clear()
        from pyworkflow._streams.driver import register  # the driver needs the definitions
        from pyworkflow._streams.step_state import execution

        # The step that takes over an execution whose first attempt (in its batch) raised:
        # the retries left, each after the delay the policy gives it.
        left = max(max_retries - 1, 0)
        delays = [retry.delay_for(n) for n in range(2, max_retries + 1)] or "exponential"
        runner = step_decorator(name=definition.step_name, max_retries=left, retry_delay=delays)
        _executions[step_name] = execution(definition)
        _runners[step_name] = runner(_executions[step_name])
        register()
        return definition

    return decorate


def get_stream_workflow(name: str) -> StreamWorkflow:
    """The stream workflow registered under ``name``.

    Raises:
        StreamDefinitionError: none is registered in this process.
    """
    try:
        return _workflows[name]
    except KeyError:
        raise StreamDefinitionError(
            f"no stream workflow named {name!r} is registered in this process (known: "
            f"{sorted(_workflows)}); import the module that defines it"
        ) from None


def runner_of(step_name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The ``@step`` that runs an execution of ``step_name`` again (``stream:<name>``)."""
    return _runners[step_name]


def execution_of(step_name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The function that runs one execution of the stream step ``step_name``, in a batch."""
    return _executions[step_name]


def steps_of_stream(stream: str) -> list[StreamStepDefinition]:
    """The stream steps subscribed to ``stream``, by name."""
    found = _by_stream.get(stream)
    if found is None:  # read at every emit and batch: sorted once per registration
        found = sorted((s for s in _steps.values() if s.stream == stream), key=lambda s: s.name)
        _by_stream[stream] = found
    return list(found)
