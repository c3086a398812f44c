"""``emit`` and ``schedule_signal``: putting a signal on a stream run, from anywhere.

Where ``emit`` is called decides how it is written:

- in workflow code it is a recorded command: a force-local step (``pyworkflow.stream.emit``)
  whose storage write carries the step's idempotency key, so neither a replay nor a re-run of
  the step after a crash stores the signal twice;
- in a stream step it is a plain storage write keyed by the execution's idempotency key (its
  step context's: the same in its batch and its retries) and the emit's position in the
  execution, so an execution that runs again does not emit twice either;
- in any other step or outside code it is a plain storage write (at-least-once as its caller).

A payload whose type a stream step of this process binds to a pydantic schema is validated
first: ``InvalidSignalPayloadError`` at the call, nothing written.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from pyworkflow._engine.context import current_activation, current_step, step_info
from pyworkflow._streams.definitions import steps_of_stream
from pyworkflow._streams.signals import plain_payload, validate_payload
from pyworkflow._streams.step_state import current_stream_step
from pyworkflow.exceptions import InputError, StorageError, StreamRunEndedError
from pyworkflow.primitives import sleep, start_child_workflow
from pyworkflow.runtime import get_runtime
from pyworkflow.step import step
from pyworkflow.storage.streams import NewSignal, StreamStore
from pyworkflow.workflow import workflow

__all__ = ["current_stream_run", "emit", "register", "schedule_signal", "stream_store"]

from contextvars import ContextVar

current_stream_run: ContextVar[str | None] = ContextVar("pyworkflow_stream_run", default=None)
"""The stream run whose driver's workflow code runs here (its body emits into it)."""

_registered: dict[str, Any] = {}


def register() -> dict[str, Any]:
    """Register the recorded emit step and the scheduled-signal workflow, once; both by name.

    Only a process that uses streams registers them (the stream decorators call this), so a
    process without streams lists and serves none of pyworkflow's own workflows.
    """
    if not _registered:
        _registered["emit"] = step(name="pyworkflow.stream.emit", force_local=True)(_emit_recorded)
        _registered["scheduled_signal"] = workflow(
            name="pyworkflow.stream.scheduled_signal", durable=True
        )(_scheduled_signal)
    return _registered


_stream_types: set[type] = set()
"""Storage classes found to be StreamStores: a protocol's isinstance check looks at each of its
methods, twice per signal otherwise."""


def stream_store(storage: Any) -> StreamStore:
    """``storage`` as a StreamStore, or a StorageError naming it."""
    if type(storage) in _stream_types:
        return cast(StreamStore, storage)
    if not isinstance(storage, StreamStore):
        raise StorageError(f"storage {getattr(storage, 'url', storage)!r} has no stream runs")
    _stream_types.add(type(storage))
    return storage


def _checked(stream: str, signal_type: str, payload: Any) -> Any:
    if not isinstance(stream, str) or not stream:
        raise InputError(f"a stream name must be a non-empty string, not {stream!r}")
    if not isinstance(signal_type, str) or not signal_type:
        raise InputError(f"a signal type must be a non-empty string, not {signal_type!r}")
    payload = plain_payload(payload)
    for definition in steps_of_stream(stream):
        schema = definition.schemas.get(signal_type)
        if schema is not None:
            validate_payload(stream, signal_type, schema, payload)
    return payload


async def _write(
    stream_run_id: str,
    stream: str,
    signal_type: str,
    payload: Any,
    *,
    source_run_id: str | None,
    key: str | None,
) -> int:
    """Store the signal (a plain storage write) and wake its driver here; its seq."""
    runtime = await get_runtime()
    store = stream_store(runtime.storage)
    encoded = runtime.codec.encode(payload, path=f"payload of signal {signal_type!r}")
    record = await store.emit_signal(
        NewSignal(
            stream_run_id=stream_run_id,
            stream=stream,
            signal_type=signal_type,
            payload=encoded,
            signal_id=uuid.uuid4().hex,
            now=runtime.executor.now(),
            source_run_id=source_run_id,
            idempotency_key=key,
        )
    )
    if record.woke and record.driver is not None:
        # The driver was idle: if it runs here, let it look now, not at a poll. The emit read
        # which run drives the stream run (one that continued as new hands it on).
        runtime.executor.wake(record.driver)
    return record.seq


async def _emit_recorded(
    stream_run_id: str, stream: str, signal_type: str, payload: Any
) -> int | dict[str, str]:
    """The seq of the stored signal, or ``{"ended": status}`` when its stream run has ended.

    An ended stream run never takes signals again, so no retry could store this one: the
    refusal is the step's logged result, and ``emit`` raises StreamRunEndedError from it at
    once (and on every replay) instead of after the step's retries.
    """
    info = step_info()
    try:
        return await _write(
            stream_run_id,
            stream,
            signal_type,
            payload,
            source_run_id=info.run_id,
            key=info.idempotency_key,
        )
    except StreamRunEndedError as exc:
        return {"ended": exc.status}


async def emit(
    stream: str, signal_type: str, payload: Any = None, *, stream_run_id: str | None = None
) -> int:
    """Put a signal on ``stream`` in a stream run; returns its sequence number there.

    In workflow code the emit is recorded (replay-safe); in a stream step it goes to the
    step's own stream run unless ``stream_run_id`` says otherwise. Elsewhere give
    ``stream_run_id``.

    Example:
        >>> await emit("agent_comms", "task.assigned", {"task_id": "t1"})

    Raises:
        InvalidSignalPayloadError: the payload fails the schema a stream step binds to its type.
        StreamRunNotFoundError: no stream run has that id.
        StreamRunEndedError: the stream run has ended (completed, cancelled or failed);
            nothing is stored.
        InputError: no stream run is known here and none is given.
    """
    payload = _checked(stream, signal_type, payload)
    state = current_stream_step.get()
    if current_activation.get() is not None and current_step.get() is None:
        target = stream_run_id or current_stream_run.get()
        if target is None:
            raise InputError(
                f"emit({stream!r}, {signal_type!r}) in workflow code needs stream_run_id="
            )
        stored = await register()["emit"](target, stream, signal_type, payload)
        if isinstance(stored, dict):
            raise StreamRunEndedError(target, stored["ended"])
        return int(stored)
    if state is not None:
        state.emits += 1
        key = f"{step_info().idempotency_key}:emit#{state.emits}"
        return await _write(
            stream_run_id or state.stream_run_id,
            stream,
            signal_type,
            payload,
            source_run_id=step_info().run_id,
            key=key,
        )
    if stream_run_id is None:
        raise InputError(f"emit({stream!r}, {signal_type!r}) outside a stream needs stream_run_id=")
    info = current_step.get()
    return await _write(
        stream_run_id,
        stream,
        signal_type,
        payload,
        source_run_id=None if info is None else info.run_id,
        key=None,
    )


async def _scheduled_signal(
    stream_run_id: str, stream: str, signal_type: str, payload: Any, delay_seconds: float
) -> int | None:
    await sleep(delay_seconds)
    try:
        return await emit(stream, signal_type, payload, stream_run_id=stream_run_id)
    except StreamRunEndedError:
        return None  # its stream run ended before the timer came due: nothing to deliver to


async def schedule_signal(
    stream_id: str,
    signal_type: str,
    payload: Any = None,
    *,
    delay_seconds: float,
    stream_run_id: str | None = None,
) -> str:
    """Emit a signal ``delay_seconds`` from now, durably; returns the id of the timer's run.

    The delay is a durable timer (a small run that sleeps, then emits): it survives restarts
    and holds no worker. From a stream step the stream run defaults to the step's own. A
    timer that comes due after its stream run ended stores nothing and completes with None.

    Example:
        >>> await schedule_signal("agent_comms", "supervisor.wakeup", {}, delay_seconds=300)

    Raises:
        InputError: a negative or non-numeric delay, or no stream run known here.
        InvalidSignalPayloadError: the payload fails its schema.
    """
    if isinstance(delay_seconds, bool) or not isinstance(delay_seconds, int | float):
        raise InputError(f"delay_seconds must be a number of seconds, not {delay_seconds!r}")
    if not delay_seconds >= 0:
        raise InputError(f"delay_seconds must be 0 or more, not {delay_seconds!r}")
    payload = _checked(stream_id, signal_type, payload)
    state = current_stream_step.get()
    target = stream_run_id or (state.stream_run_id if state is not None else None)
    if current_activation.get() is not None and current_step.get() is None:
        target = target or current_stream_run.get()
    if target is None:
        raise InputError(f"schedule_signal({stream_id!r}, {signal_type!r}) needs stream_run_id=")
    call = (target, stream_id, signal_type, payload, float(delay_seconds))
    timer = register()["scheduled_signal"]
    if current_activation.get() is not None and current_step.get() is None:
        handle = await start_child_workflow(
            timer, *call, wait_for_completion=False, parent_close_policy="abandon"
        )
        return str(handle.run_id)
    from pyworkflow.client import start  # the client imports the engine's whole API

    key = None
    if state is not None:
        state.schedules += 1
        key = f"{step_info().idempotency_key}:schedule#{state.schedules}"
    return await start(timer, *call, idempotency_key=key)
