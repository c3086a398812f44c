"""A private, deterministic event loop that runs workflow code.

Workflow coroutines (and the tasks ``asyncio.gather`` makes of them) run on this loop, never on
the executor's. The activation steps it by hand: ``run_until_quiet()`` runs ready callbacks in
FIFO order until none is left, which is exactly the moment "every branch of the workflow waits on
something" (DESIGN §2.2). Ready callbacks are the only source of progress: there are no timers
and no I/O here, so the same inputs in the same order always produce the same commands in the
same order.

While it steps, the loop is installed as the thread's running loop (the approach Temporal's
Python SDK takes) so that ``asyncio.get_running_loop()``, ``gather`` and ``create_task`` inside
workflow code land here; the executor's loop is put back before ``run_until_quiet`` returns.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

from pyworkflow.exceptions import NotInWorkflowError

__all__ = ["WorkflowLoop"]

_T = TypeVar("_T")
_log = logging.getLogger("pyworkflow.engine")

_NO_TIMERS = (
    "asyncio timers (asyncio.sleep, wait_for, timeouts) cannot be used in workflow code: "
    "use `await pyworkflow.sleep(...)` for a durable timer, or move the call into a step"
)


class WorkflowLoop(asyncio.AbstractEventLoop):
    """Runs workflow tasks deterministically, one quiet point at a time.

    Only the methods tasks, futures and ``gather`` use are implemented; the rest of
    AbstractEventLoop (I/O, subprocesses, signals) stays abstract and raises if reached, which
    is right for workflow code.
    """

    def __init__(self) -> None:
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- what the activation calls -----------------------------------------------------------

    def run_until_quiet(self) -> None:
        """Run ready callbacks until none is left."""
        outer = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        try:
            ready = self._ready
            while ready:
                handle = ready.popleft()
                if not handle._cancelled:
                    handle._run()
        finally:
            asyncio.events._set_running_loop(outer)

    def spawn(
        self, coro: Coroutine[Any, Any, _T], context: contextvars.Context
    ) -> asyncio.Task[_T]:
        """Create the root task of a workflow in ``context``."""
        return self._track(asyncio.Task(coro, loop=self, context=context))

    def unfinished_tasks(self) -> list[asyncio.Task[Any]]:
        """Tasks of this loop that have not finished.

        Kept here rather than asked of ``asyncio.all_tasks``, which walks every task of the
        process: with thousands of runs in flight that made closing a run quadratic.
        """
        return [task for task in self._tasks if not task.done()]

    def close(self) -> None:
        """Drop pending callbacks; the loop runs nothing afterwards."""
        self._ready.clear()
        self._tasks.clear()
        self._closed = True

    def _track(self, task: asyncio.Task[_T]) -> asyncio.Task[_T]:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- the part of AbstractEventLoop that tasks and futures use --------------------------

    def call_soon(  # type: ignore[override]  # typeshed's TypeVarTuple form; same behaviour
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        """Queue a callback; it runs at the next ``run_until_quiet``."""
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def create_future(self) -> asyncio.Future[Any]:
        """A future bound to this loop."""
        return asyncio.Future(loop=self)

    def create_task(
        self,
        coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[_T]:
        """A task on this loop (``gather`` and ``ensure_future`` come here)."""
        return self._track(asyncio.Task(coro, loop=self, name=name, context=context))

    def get_debug(self) -> bool:
        """Debug mode is off: it would add timing-dependent warnings."""
        return False

    def is_running(self) -> bool:
        """True while open: workflow code only ever runs inside ``run_until_quiet``."""
        return not self._closed

    def is_closed(self) -> bool:
        """True after ``close``."""
        return self._closed

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Log errors of abandoned workflow tasks (e.g. a gather branch after the run ended)."""
        _log.debug("workflow loop: %s", context.get("message"), exc_info=context.get("exception"))

    def time(self) -> float:
        """Refused: workflow code reads time through ``pyworkflow.now()``."""
        raise NotInWorkflowError(_NO_TIMERS)

    def call_later(self, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:  # type: ignore[override]
        """Refused: see ``time``."""
        raise NotInWorkflowError(_NO_TIMERS)

    def call_at(self, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:  # type: ignore[override]
        """Refused: see ``time``."""
        raise NotInWorkflowError(_NO_TIMERS)

    def call_soon_threadsafe(self, *args: Any, **kwargs: Any) -> asyncio.Handle:  # type: ignore[override]
        """Refused: threads cannot feed workflow code; its inputs come from the log."""
        raise NotInWorkflowError("workflow code cannot be called into from another thread")
