"""Transient runs: executed in this process, nothing written to storage.

A workflow declared ``@workflow(durable=False)``, or any workflow without ``durable=`` once
``configure(default_durable=False)``, runs transiently: ``start()`` executes it here, in this
process, until it ends, and returns its run id; its steps, retries and sleeps happen in
process (a ``sleep`` or a retry delay simply waits), and nothing reaches the configured
storage. It is for scripts and tests where durability is not wanted. What it costs:

- no crash recovery: a run cut short by the process's end is gone;
- ``start()`` returns only when the run has ended, and raises what ended it: the exception
  the workflow raised (rebuilt from its logged type and message, as for a failed step), or
  ``WorkflowCancelledError``; ``run()`` returns the result the same way (nothing keeps it
  afterwards for ``get_workflow_result``);
- the durable-only calls refuse it with ``TransientRunError``: ``hook()`` (nothing outside
  the process could resume it), and the queries (``get_workflow_run`` ...) find no such run;
- the engine underneath is the same one (a private in-memory storage per event loop), so
  replay rules, retries and step identities are those of durable runs.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from pyworkflow import config
from pyworkflow._engine.engine import EngineSettings
from pyworkflow._engine.failures import rebuild_error
from pyworkflow._engine.new_runs import encode_call, new_run
from pyworkflow.events import RunStatus
from pyworkflow.exceptions import WorkflowCancelledError
from pyworkflow.executors.local import LocalExecutor
from pyworkflow.storage.memory import MemoryStorage
from pyworkflow.workflow import Workflow

__all__ = ["is_transient", "run_transient"]

_executors: dict[asyncio.AbstractEventLoop, LocalExecutor] = {}


def is_transient(wf: Workflow[..., Any], durable: bool | None = None) -> bool:
    """Whether a run of ``wf`` is transient.

    ``durable`` (the call's ``start(durable=)``) decides, else the workflow's ``durable=``,
    else the configured default.
    """
    if durable is None:
        durable = wf.durable if wf.durable is not None else config.default_durable()
    return not durable


async def _executor() -> LocalExecutor:
    loop = asyncio.get_running_loop()
    executor = _executors.get(loop)
    if executor is None:
        for old in [old for old in _executors if old.is_closed()]:
            del _executors[old]
        storage = MemoryStorage()
        await storage.open()
        # An infinite horizon: a waiting run keeps its coroutine (nothing else could wake it).
        settings = EngineSettings(horizon_seconds=math.inf)
        executor = LocalExecutor(storage, config.build_codec(), settings=settings)
        _executors[loop] = executor
    return executor


async def run_transient(
    wf: Workflow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, Any]:
    """Execute a transient run of ``wf`` here until it ends; its run id and its result.

    The result is that of the last run of a continue-as-new chain, as for durable runs.

    Raises:
        Exception: what the workflow raised, rebuilt from its logged type and message.
        WorkflowCancelledError: it was cancelled.
    """
    executor = await _executor()
    encoded = encode_call(wf, args, kwargs, executor.engine.codec)
    record, _ = await executor.create_run(new_run(wf, encoded, now=executor.now()))
    first = run_id = record.run_id
    while True:
        ended = executor.ended_here(run_id) or await executor.engine.storage.get_run(run_id)
        if ended is not None and ended.status is RunStatus.CONTINUED_AS_NEW and ended.continued_to:
            run_id = ended.continued_to  # the chain's next run
            continue
        if ended is not None and ended.status.is_terminal:
            break
        await executor.wait_finished(run_id, 1.0)
    if ended.status is RunStatus.FAILED:
        error = ended.error or {}
        raise rebuild_error(error, f"workflow {wf.name!r}")
    if ended.status is RunStatus.CANCELLED:
        raise WorkflowCancelledError(run_id, ended.cancel_reason)
    result = None if ended.result is None else executor.engine.codec.decode(ended.result)
    return first, result
