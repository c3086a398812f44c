"""Starting runs and asking about them: the functions users call from application code.

Every function validates its input before the first write (DESIGN §2.4): a bad argument raises
a typed error and leaves storage untouched.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any

from pyworkflow import config, registry, retention
from pyworkflow._backoff import Backoff
from pyworkflow._engine.event_kinds import EVENT_FORMAT
from pyworkflow._engine.failures import unreadable_outcome
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
from pyworkflow.per_call import same_storage
from pyworkflow.runtime import get_runtime
from pyworkflow.starting import run, start
from pyworkflow.step_context import CONTEXT_KIND
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import RunCursor, RunRecord

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
