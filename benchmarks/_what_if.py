"""What-if runs: a benchmark with a proposed engine change monkeypatched in, in this process only.

Not a benchmark of the shipped code. It measures what a suggested change in src/ would buy,
so the suggestion in BENCHMARKS.md comes with a reproducible number. src/ is not touched.

Usage: ``.venv/bin/python benchmarks/_what_if.py {b1,b2} [--tasks] [--nopoll] [-- args]``

- ``--tasks``: ``WorkflowLoop`` remembers the tasks it creates and ``WorkflowActivation.close``
  cancels those, instead of ``asyncio.all_tasks(loop)``, which walks every task of the process
  (O(live tasks) per run that ends, so O(n^2) for n concurrent runs).
- (B4 has its own what-if flag, ``b4_memory.py --waves``: its worker is a subprocess.)
- ``--nopoll``: ``get_workflow_result`` first waits on the local driver (``wait_finished``)
  when this process drives the run, instead of polling ``get_run`` from 20 ms up.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any


def patch_tasks() -> None:
    from pyworkflow._engine import activation, loop

    spawn, create_task = loop.WorkflowLoop.spawn, loop.WorkflowLoop.create_task

    def track(self: Any, task: Any) -> Any:
        own = self.__dict__.setdefault("_own_tasks", set())
        own.add(task)
        task.add_done_callback(own.discard)
        return task

    loop.WorkflowLoop.spawn = lambda self, coro, context: track(self, spawn(self, coro, context))
    loop.WorkflowLoop.create_task = lambda self, coro, **kw: track(
        self, create_task(self, coro, **kw)
    )

    def close(self: Any) -> None:
        if self._closed:
            return
        self._closed = True
        own = self._loop.__dict__.get("_own_tasks", set())
        for task in list(own):
            task.cancel()
        self._loop.run_until_quiet()
        for task in list(own):
            if not task.done():
                task.get_coro().close()
        self._loop.close()

    activation.WorkflowActivation.close = close


def patch_nopoll() -> None:
    import pyworkflow
    from pyworkflow import client
    from pyworkflow.config import get_runtime

    original = client.get_workflow_result

    async def get_workflow_result(run_id: str, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        runtime = await get_runtime()
        if runtime.executor.is_driving(run_id):
            await runtime.executor.wait_finished(run_id, 1.0 if timeout is None else timeout)
        return await original(run_id, timeout)

    client.get_workflow_result = get_workflow_result
    pyworkflow.get_workflow_result = get_workflow_result  # type: ignore[attr-defined]
    client.run.__globals__["get_workflow_result"] = get_workflow_result


def main() -> int:
    argv = sys.argv[1:]
    if not argv or argv[0] not in ("b1", "b2"):
        print(__doc__)
        return 0
    bench, rest = argv[0], argv[1:]
    extra = rest[rest.index("--") + 1 :] if "--" in rest else []
    flags = set(rest[: rest.index("--")] if "--" in rest else rest)
    if "--tasks" in flags:
        patch_tasks()
    if "--nopoll" in flags:
        patch_nopoll()
    script = {"b1": "b1_sequential.py", "b2": "b2_concurrent.py"}[bench]
    print(f"what-if {sorted(flags) or ['(no patch)']}: {script}", flush=True)
    sys.argv = [script, *extra]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    runpy.run_path(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), script), run_name="__main__"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
