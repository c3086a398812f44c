"""``start`` and ``run``: how application code begins a run (re-exported by ``pyworkflow.client``).

A call's own keywords (``idempotency_key``, ``durable``, ``storage``, ``runtime``) are
``start``'s, never the workflow's. Every check happens before the first write (DESIGN §2.4).
"""

from __future__ import annotations

from typing import Any, ParamSpec, TypeVar, overload

from pyworkflow import config, registry, unfinished
from pyworkflow._engine.new_runs import encode_call, new_run
from pyworkflow.exceptions import InputError
from pyworkflow.per_call import same_runtime, same_storage
from pyworkflow.runtime import get_runtime
from pyworkflow.storage.protocol import Storage
from pyworkflow.transient import is_transient, run_transient
from pyworkflow.workflow import Workflow

__all__ = ["run", "start"]

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
        run_id, _ = await run_transient(definition, args, kwargs)
        return run_id
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
        _, value = await run_transient(definition, args, kwargs)
        transient: R = value
        return transient
    from pyworkflow.client import get_workflow_result  # it imports this module

    run_id = await start(wf, *args, **kwargs)
    result: R = await get_workflow_result(run_id)
    return result
