"""Runs this process started that had not ended when it exited: said on stderr at exit.

A script that starts a run and returns leaves the run to whoever executes runs of that storage
next; if nobody does, it waits forever, silently. So a process that executes runs (not client
only) remembers the runs it started until they end here, and at exit names those still
unfinished and how to finish them: a worker on that storage, or ``resume(run_id)``. Runs
in ``memory://`` storage are gone with the process; it says that instead.
"""

from __future__ import annotations

import atexit
import sys
from typing import Any

__all__ = ["forget", "silence", "started", "unfinished_runs"]

_SHOWN = 10  # runs named in the message; the rest are counted
_started: dict[str, tuple[str, str, Any]] = {}  # run id -> (workflow, storage url, executor)
_registered = False
_silenced = False


def started(runtime: Any, run_id: str, workflow: str) -> None:
    """Remember a run this process started, if it executes runs (a client's are a worker's).

    ``runtime``: a ``pyworkflow.runtime.Runtime`` (not imported: executors import this module).
    """
    global _registered
    executor = runtime.executor
    if not getattr(executor, "serving", None) or executor.serving.client_only:
        return
    _started[run_id] = (workflow, runtime.storage.url, executor)
    if not _registered:
        atexit.register(_report)
        _registered = True


def silence() -> None:
    """Say nothing at exit: the ``pyworkflow`` command tells its user what became of its runs."""
    global _silenced
    _silenced = True


def forget(run_id: str) -> None:
    """The run ended (or another process took it on): nothing to say about it."""
    _started.pop(run_id, None)


def unfinished_runs() -> list[tuple[str, str, str]]:
    """``(run_id, workflow, storage url)`` of started runs not known to have ended here."""
    found = []
    for run_id, (workflow, url, executor) in list(_started.items()):
        if executor.ended_here(run_id) is not None:
            _started.pop(run_id, None)
            continue
        found.append((run_id, workflow, url))
    return found


def _report() -> None:
    runs = unfinished_runs()
    if not runs or _silenced:
        return
    lines = [
        f"pyworkflow: {len(runs)} run(s) started by this process had not ended when it exited, "
        "and nothing in it executes them any more:"
    ]
    lines += [f"  {run_id} ({workflow}) in {url}" for run_id, workflow, url in runs[:_SHOWN]]
    if len(runs) > _SHOWN:
        lines.append(f"  ... and {len(runs) - _SHOWN} more")
    urls = sorted({url for _, _, url in runs})
    lost = [u for u in urls if u.startswith("memory:")]
    kept = [u for u in urls if not u.startswith("memory:")]
    if lost:
        lines.append("  runs in memory:// storage are lost with this process.")
    for url in kept:
        lines.append(
            f"  to finish them: pyworkflow worker run --module <your workflows> --storage {url}"
            " (or call pyworkflow.resume(run_id) in a process that executes runs)"
        )
    sys.stderr.write("\n".join(lines) + "\n")
