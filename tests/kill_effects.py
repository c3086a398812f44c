"""Imported by the workflow modules of the kill -9 tests, inside the worker processes.

``record_execution()`` appends one line per step execution (run id, step id, attempt, time,
pid) to the file named by ``KILLTEST_SIDE_EFFECTS``, fsynced before the step returns: the
test's record of what really ran, which survives the worker being killed
(``workers.executions_in`` counts it).
"""

from __future__ import annotations

import os
import time

from pyworkflow import get_step_context


def record_execution() -> None:
    """Log that the current step attempt ran, durably."""
    ctx = get_step_context()
    append_line(f"{ctx.run_id} {ctx.step_id} {ctx.attempt} {time.time():.6f} {os.getpid()}")


def append_line(line: str) -> None:
    """Append ``line`` to the file named by ``KILLTEST_SIDE_EFFECTS``, fsynced: it survives a
    kill -9 right after."""
    fd = os.open(os.environ["KILLTEST_SIDE_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
