"""The sync bridge of a Celery worker process: one long-lived event loop per process.

Celery task bodies are sync functions. Each runs its coroutine here, on a loop made once per
process (never ``asyncio.run`` per task: the storage's connections, the runtime and any loop
state a user's step keeps live across tasks). The loop is keyed by pid, so a pool process
forked from a parent that had one makes its own (DESIGN §3).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_in_process_loop"]

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_pid: int | None = None


def run_in_process_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on this process's event loop, made on first use."""
    global _loop, _pid
    if _loop is None or _pid != os.getpid() or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        _pid = os.getpid()
    return _loop.run_until_complete(coro)
