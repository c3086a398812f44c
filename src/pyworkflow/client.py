"""Starting runs and asking about them: the functions users call from application code.

Every function validates its input before the first write (DESIGN §2.4): a bad argument raises
a typed error and leaves storage untouched.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar, overload

from pyworkflow import config, registry, retention, unfinished
from pyworkflow._backoff import Backoff
from pyworkflow._engine.event_kinds import EVENT_FORMAT
from pyworkflow._engine.failures import unreadable_outcome
from pyworkflow._engine.new_runs import encode_call, new_run
from pyworkflow._run_views import WorkflowEvent, WorkflowRun, event_view, run_view
from pyworkflow.durations import parse_duration
from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import (
    InputError,
    InvalidRunStateError,
    RunNotFoundError,
    WorkflowCancelledError,
    WorkflowFailedError,
)
from pyworkflow.per_call import same_runtime, same_storage
from pyworkflow.runtime import get_runtime
from pyworkflow.step_context import CONTEXT_KIND
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import RunCursor, RunRecord
from pyworkflow.transient import is_transient, run_transient, start_transient
from pyworkflow.workflow import Workflow

__all__ = [
    "WorkflowEvent",
    "WorkflowRun",
    "cancel_workflow",
    "get_workflow_chain",
    "get_workflow_events",
    "get_workflow_result",
    "get_workflow_run",
    "list_workflow_runs",
    "prune_runs",
    "resume",
    "run",
    "start",
]

P = ParamSpec("P")
R = TypeVar("R")


def _resolve(wf: Workflow[..., Any] | str) -> Workflow[..., Any]:
    if isinstance(wf, str):
        found: Workflow[..., Any] = registry.get_workflow(wf)
        return found
    if not isinstance(wf, Workflow):
        raise InputError(
            f"{wf!r} is not a workflow; decorate an async function with @workflow() first"
        )
    return wf


# Typed for users (py.typed): a call without options checks the arguments against the
# workflow's signature. A keyword of start's own cannot sit beside P.kwargs (PEP 612), so a call
# with one of them (an overload each, that keyword required), or by name, is checked less.
@overload
async def start(wf: Workflow[P, Any], *args: P.args, **kwargs: P.kwargs) -> str: ...
@overload
async def start(
    wf: Workflow[..., Any] | str,
    *args: Any,
    idempotency_key: str | None,
    durable: bool | None = None,
    storage: Storage | str | None = None,
    runtime: str | None = None,
    **kwargs: Any,
) -> str: ...
@overload
async def start(
    wf: Workflow[..., Any] | str,
    *args: Any,
    idempotency_key: str | None = None,
    durable: bool | None,
    storage: Storage | str | None = None,
    runtime: str | None = None,
    **kwargs: Any,
) -> str: ...
@overload
async def start(
    wf: Workflow[..., Any] | str,
    *args: Any,
    idempotency_key: str | None = None,
    durable: bool | None = None,
    storage: Storage | str | None,
    runtime: str | None = None,
    **kwargs: Any,
) -> str: ...
@overload
async def start(
    wf: Workflow[..., Any] | str,
    *args: Any,
    idempotency_key: str | None = None,
    durable: bool | None = None,
    storage: Storage | str | None = None,
    runtime: str | None,
    **kwargs: Any,
) -> str: ...
@overload
async def start(wf: str, *args: Any, **kwargs: Any) -> str: ...
async def start(  # type: ignore[misc]  # P.kwargs may not hold idempotency_key: it is start's
    wf: Workflow[..., Any] | str,
    *args: Any,
    idempotency_key: str | None = None,
    durable: bool | None = None,
    storage: Storage | str | None = None,
    runtime: str | None = None,
    **kwargs: Any,
) -> str:
    """Start a durable run of ``wf`` and return its id.

    By default it returns as soon as the run is stored, and this process (unless client only)
    executes it in the background. With ``configure(start_waits=True)`` it returns once the
    run has settled: ended, or waiting on a timer, a hook or a retry delay (see README, "How
    start() returns"). A transient workflow (``durable=False``) runs here to its end first.

    Example:
        >>> run_id = await start(onboarding, "user-42", idempotency_key="onboard-user-42")
        >>> run_id = await start(onboarding, "user-43", durable=False)  # transient, this call

    Args:
        wf: the workflow, or its registered name.
        *args: its positional arguments.
        idempotency_key: the same key returns the existing run's id, even after it ended.
        durable: this call's choice, over the workflow's ``durable=`` and
            ``configure(default_durable=)``: False runs it transiently (``pyworkflow.transient``),
            True durably. ``durable``, ``storage`` and ``runtime`` are start's own keywords,
            never passed to the workflow.
        storage: accepted for code written for the pyworkflow documentation; it must be this
            process's storage (``pyworkflow.per_call``).
        runtime: the same, for the executor (``"local"`` or ``"celery"``).
        **kwargs: its keyword arguments.

    Raises:
        WorkflowNotFoundError: no workflow by that name.
        SerializationError: an argument cannot be encoded (the error names it).
        IdempotencyConflictError: the key belongs to a run of another workflow.
        InputError: ``storage`` or ``runtime`` is not this process's, or ``durable`` is no bool.
    """
    definition = _resolve(wf)
    if durable is not None and not isinstance(durable, bool):
        raise InputError(f"start(durable=...) takes True or False, not {durable!r}")
    same_runtime(runtime)
    if is_transient(definition, durable):
        return await start_transient(definition, args, kwargs)
    await same_storage(storage)
    runtime_ = await get_runtime()
    encoded = encode_call(definition, args, kwargs, runtime_.codec)
    executor = runtime_.executor
    record, created = await executor.create_run(
        new_run(definition, encoded, now=executor.now(), idempotency_key=idempotency_key)
    )
    if created:
        unfinished.started(runtime_, record.run_id, definition.name)
    if config.start_waits():
        await executor.settle(record.run_id)
    return record.run_id


@overload
async def run(wf: Workflow[P, R], *args: P.args, **kwargs: P.kwargs) -> R: ...
@overload
async def run(
    wf: Workflow[..., R],
    *args: Any,
    idempotency_key: str | None,
    durable: bool | None = None,
    storage: Storage | str | None = None,
    runtime: str | None = None,
    **kwargs: Any,
) -> R: ...
@overload
async def run(
    wf: Workflow[..., R],
    *args: Any,
    idempotency_key: str | None = None,
    durable: bool | None,
    storage: Storage | str | None = None,
    runtime: str | None = None,
    **kwargs: Any,
) -> R: ...
@overload
async def run(
    wf: Workflow[..., R],
    *args: Any,
    idempotency_key: str | None = None,
    durable: bool | None = None,
    storage: Storage | str | None,
    runtime: str | None = None,
    **kwargs: Any,
) -> R: ...
@overload
async def run(
    wf: Workflow[..., R],
    *args: Any,
    idempotency_key: str | None = None,
    durable: bool | None = None,
    storage: Storage | str | None = None,
    runtime: str | None,
    **kwargs: Any,
) -> R: ...
async def run(wf: Workflow[..., R], *args: Any, **kwargs: Any) -> R:
    """Start a run and wait for its result: the one-liner for scripts and tests.

    Takes ``start``'s ``idempotency_key``, ``durable``, ``storage`` and ``runtime``; see there.

    Example:
        >>> receipt = await run(checkout, cart_id="c-1")

    Raises:
        WorkflowFailedError: the run failed (carries the error type, message, traceback).
        WorkflowCancelledError: the run was cancelled.
    """
    durable = kwargs.get("durable")
    definition = _resolve(wf)
    if is_transient(definition, durable if isinstance(durable, bool) else None):
        same_runtime(kwargs.pop("runtime", None))
        for own in ("durable", "storage", "idempotency_key"):
            kwargs.pop(own, None)  # nothing is stored: no storage to check, no key to keep
        transient: R = await run_transient(definition, args, kwargs)
        return transient
    run_id = await start(wf, *args, **kwargs)
    result: R = await get_workflow_result(run_id)
    return result


async def _get(run_id: str) -> RunRecord:
    runtime = await get_runtime()
    record = await runtime.storage.get_run(run_id)
    if record is None:
        raise RunNotFoundError(run_id)
    return record


async def get_workflow_run(run_id: str, *, storage: Storage | str | None = None) -> WorkflowRun:
    """The run's status, timestamps and result or error.

    A run whose stored row is damaged, or whose result cannot be decoded here, is returned all
    the same: its ``damage`` says what, naming the table, run and column.

    Raises:
        RunNotFoundError: no such run.
    """
    await same_storage(storage)
    record = await _get(run_id)
    runtime = await get_runtime()
    view = run_view(record, runtime.codec)
    if view.workflow_name in registry.workflows_with_context():
        view = dataclasses.replace(view, context=await _last_context(runtime, run_id))
    return view


async def _last_context(runtime: Any, run_id: str) -> dict[str, Any] | None:
    """The step context the run set last (its fields), read from its log."""
    found = None
    for event in await runtime.storage.load_events(run_id):
        payload = event.payload
        if event.type is EventType.SIDE_EFFECT_RECORDED and payload.get("kind") == CONTEXT_KIND:
            found = payload.get("value")
    if found is None:
        return None
    fields: dict[str, Any] = runtime.codec.decode(found).get("fields", {})
    return fields


async def get_workflow_events(
    run_id: str, *, storage: Storage | str | None = None
) -> list[WorkflowEvent]:
    """The run's event log, in order.

    Raises:
        RunNotFoundError: no such run.
        CorruptRecordError: an event cannot be read back (naming it); the run's driver fails
            such a run.
    """
    await same_storage(storage)
    await _get(run_id)
    runtime = await get_runtime()
    return [event_view(e) for e in await runtime.storage.load_events(run_id)]


async def get_workflow_result(
    run_id: str,
    timeout: float | None = None,  # noqa: ASYNC109 (the documented API name)
    *,
    storage: Storage | str | None = None,
) -> Any:
    """Wait for the run to end and return its result.

    Args:
        run_id: the run.
        timeout: seconds to wait; None waits for as long as it takes.
        storage: as for ``resume``.

    Raises:
        RunNotFoundError: no such run.
        WorkflowFailedError: the run failed.
        WorkflowCancelledError: the run was cancelled.
        TimeoutError: ``timeout`` passed first.
        CorruptRecordError: the run ended but how (its status, result or error) cannot be read.
    """
    await same_storage(storage)
    runtime = await get_runtime()
    executor = runtime.executor
    deadline = None if timeout is None else time.monotonic() + timeout
    pauses = Backoff(0.02, 1.0)
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        # A run that ended here a moment ago: the row this process just committed.
        record = executor.ended_here(run_id)
        if record is None and executor.is_driving(run_id) and (remaining is None or remaining > 0):
            # Driven here: its driver wakes us when it ends (or stops); no storage reads
            # meanwhile, even if something else (a notification) wakes us first.
            await executor.wait_finished(run_id, remaining)
            continue
        record = record or await _get(run_id)
        if (damage := unreadable_outcome(record)) is not None:
            raise damage
        if record.status is RunStatus.COMPLETED:
            return runtime.codec.decode(record.result)
        if record.status is RunStatus.FAILED:
            error = record.error or {}
            raise WorkflowFailedError(
                run_id, error.get("type", "?"), error.get("message", ""), error.get("traceback", "")
            )
        if record.status is RunStatus.CANCELLED:
            raise WorkflowCancelledError(run_id, record.cancel_reason)
        if record.status is RunStatus.CONTINUED_AS_NEW and record.continued_to:
            run_id = record.continued_to  # follow the chain to its last run
            continue
        if remaining is not None and remaining <= 0:
            raise TimeoutError(f"run {run_id!r} is still {record.status.value} after {timeout}s")
        # Elsewhere, or waiting in storage: look again with backoff (a storage that notifies
        # wakes us sooner when the run ends).
        pause = pauses.next()
        wait = pause if remaining is None else min(pause, remaining)
        await executor.wait_finished(run_id, wait)


async def resume(run_id: str, *, storage: Storage | str | None = None) -> Any:
    """Continue a failed run, or wake a waiting one; its result if it has completed.

    A failed run: its failed steps run again with a fresh retry budget, and a workflow with a
    ``max_duration`` gets it afresh, counted from now. A run that is waiting or running is
    made to look at storage again (the manual wake-up of a suspended run: whatever is due,
    a timer, a retry, a hook's payload, runs now). With ``configure(start_waits=True)`` it
    returns once the run has settled again, and then also returns the result of a run that
    has completed (rather than refusing it).

    Args:
        run_id: the run.
        storage: accepted for code written for the pyworkflow documentation; it must be
            the configured storage (``pyworkflow.per_call``).

    Returns:
        The run's result once it has completed (with ``start_waits``), else None.

    Raises:
        RunNotFoundError: no such run.
        WorkflowNotFoundError: its workflow is not registered in this process.
        InvalidRunStateError: the run was cancelled, or (without ``start_waits``) completed.
    """
    await same_storage(storage)
    record = await _get(run_id)
    definition = registry.get_workflow(record.workflow_name)
    runtime = await get_runtime()
    waits = config.start_waits()
    if waits and record.status is RunStatus.COMPLETED:
        return runtime.codec.decode(record.result)
    if record.status is RunStatus.FAILED:
        now = runtime.executor.now()
        payload: dict[str, Any] = {"v": EVENT_FORMAT}
        if definition.max_duration is not None:
            payload["deadline"] = now + definition.max_duration
        await runtime.storage.reopen_failed_run(run_id, now=now, payload=payload)
    elif record.status.is_terminal:
        raise InvalidRunStateError(run_id, record.status.value, "only a failed run can resume")
    runtime.executor.wake(run_id)
    if not waits:
        return None
    await runtime.executor.settle(run_id)
    ended = await _get(run_id)
    while ended.status is RunStatus.CONTINUED_AS_NEW and ended.continued_to:
        ended = await _get(ended.continued_to)
    return runtime.codec.decode(ended.result) if ended.status is RunStatus.COMPLETED else None


async def cancel_workflow(
    run_id: str, reason: str | None = None, *, storage: Storage | str | None = None
) -> bool:
    """Ask a run to stop: it sees CancellationError at its next primitive.

    Returns False, writing nothing, when the run has already ended. ``storage``: as for
    ``resume``. With ``configure(start_waits=True)`` it returns once the run has settled.

    Raises:
        RunNotFoundError: no such run.
    """
    await same_storage(storage)
    await _get(run_id)
    runtime = await get_runtime()
    cancelled = await runtime.storage.request_cancel(
        run_id, now=runtime.executor.now(), reason=reason
    )
    runtime.executor.wake(run_id)
    if cancelled and config.start_waits():
        await runtime.executor.settle(run_id)
    return cancelled


async def list_workflow_runs(
    *,
    status: RunStatus | str | Collection[RunStatus | str] | None = None,
    workflow_name: str | None = None,
    limit: int = 100,
    before: str | None = None,
    schedule_id: str | None = None,
    tags: Collection[str] | None = None,
    storage: Storage | str | None = None,
) -> list[WorkflowRun]:
    """Runs newest first; pass the last run id of a page as ``before`` for the next page.

    ``schedule_id`` keeps the runs that schedule started.

    One bad run never hides the others: a run whose stored row is damaged, or whose result
    cannot be decoded here, is listed all the same, its ``damage`` saying what (see
    ``WorkflowRun``).

    Example:
        >>> page = await list_workflow_runs(status="failed", limit=50)
        >>> older = await list_workflow_runs(status="failed", limit=50, before=page[-1].run_id)
        >>> billing = await list_workflow_runs(tags=["billing"])  # runs carrying every tag

    ``storage``: as for ``resume``.

    Raises:
        InputError: an unknown status or a limit below 1.
        RunNotFoundError: ``before`` names no run.
    """
    if isinstance(status, str | RunStatus):
        status = [status]
    try:
        statuses = None if status is None else [RunStatus(s) for s in status]
    except ValueError as exc:
        raise InputError(f"unknown run status in {status!r}: {exc}") from exc
    if limit < 1:
        raise InputError(f"limit must be at least 1, not {limit!r}")
    if isinstance(tags, str) or any(not isinstance(t, str) or not t for t in tags or ()):
        raise InputError(f"tags must be a list of non-empty strings, not {tags!r}")
    await same_storage(storage)
    runtime = await get_runtime()
    cursor = None
    if before is not None:
        last = await _get(before)
        cursor = RunCursor(last.created_at, last.run_id)
    records = await runtime.storage.list_runs(
        statuses=statuses,
        workflow_name=workflow_name,
        limit=limit,
        before=cursor,
        schedule_id=schedule_id,
        tags=list(tags) if tags else None,
    )
    return [run_view(r, runtime.codec) for r in records]


async def prune_runs(
    older_than: str | float | timedelta,
    *,
    batch_size: int = retention.DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Delete runs that ended more than ``older_than`` ago, with their event logs.

    Retention for a database that would otherwise grow forever. Only ended runs go (completed,
    failed, cancelled, continued as new), counted from when they ended, never from when they
    started; a running, suspended or pending run is never touched, however old. Deletion goes
    in batches of ``batch_size`` runs, each its own transaction, so workers sharing the
    database wait on no long lock. A pruned run is gone for good: its id is unknown afterwards
    and its idempotency key starts a new run. Workers can do the same on a schedule
    (``configure(retention="30d")``, ``pyworkflow worker run --retention 30d``).

    Example:
        >>> deleted = await prune_runs("30d")
        >>> deleted = await prune_runs(timedelta(weeks=2), batch_size=1000)

    Args:
        older_than: a duration (``"30d"``, ``"12h"``, seconds, a ``timedelta``), measured
            back from the executor's clock.
        batch_size: runs deleted per transaction.
        on_progress: called after each batch with the number of runs deleted so far.

    Returns:
        How many runs were deleted.

    Raises:
        InvalidDurationError: ``older_than`` is not a duration; nothing is deleted.
        InputError: ``batch_size`` is below 1; nothing is deleted.
    """
    age = parse_duration(older_than)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a whole number of runs >= 1, not {batch_size!r}")
    runtime = await get_runtime()
    return await retention.delete_ended_runs(
        runtime.storage,
        ended_before=runtime.executor.now() - age,
        batch_size=batch_size,
        on_progress=on_progress,
    )


async def get_workflow_chain(
    run_id: str, *, storage: Storage | str | None = None
) -> list[WorkflowRun]:
    """Every run of the continue-as-new chain ``run_id`` belongs to, first to last.

    ``storage``: as for ``resume``.

    Raises:
        RunNotFoundError: no such run.
    """
    await same_storage(storage)
    runtime = await get_runtime()
    storage = runtime.storage
    record = await _get(run_id)
    while record.continued_from and (earlier := await storage.get_run(record.continued_from)):
        record = earlier
    chain = [record]
    while record.continued_to and (later := await storage.get_run(record.continued_to)):
        record = later
        chain.append(record)
    return [run_view(r, runtime.codec) for r in chain]
