"""Determinism rules for workflow code, and the replay-safe helpers that keep them.

Workflow code is replayed from the log after a restart, so it must issue the same commands in
the same order every time it runs with the same log:

1. All I/O goes in steps. Workflow code awaits only steps, ``sleep``, and ``asyncio.gather``
   of coroutines that do the same.
2. Clock, randomness and ids come from ``now()``, ``random()`` and ``uuid4()`` here: the first
   run records each value, replays return the recorded one.
3. Allowed concurrency: ``asyncio.gather`` (and ``create_task`` awaited later). Its branches
   start in argument order and outcomes are replayed in the order they were logged, so they
   interleave as they did the first time. Not allowed: ``asyncio.wait``, ``as_completed``,
   ``wait_for`` and ``asyncio.sleep``: they depend on timers that do not exist in workflow
   code (the workflow loop refuses them with a clear error).
4. Do not branch on mutable global state, environment variables or wall-clock time read
   directly; if a value may change between deploys, read it in a step.

A replay that issues a different command (kind or name) than the log holds at the same position
raises ``NonDeterminismError`` before anything executes.

Outside workflow code the helpers simply return fresh values.
"""

from __future__ import annotations

import random as _random
import uuid as _uuid
from datetime import UTC, datetime

from pyworkflow._engine.context import current_activation, current_step

__all__ = ["in_workflow", "now", "random", "uuid4"]


def in_workflow() -> bool:
    """True when called from workflow code (not from a step, not from plain code)."""
    return current_activation.get() is not None and current_step.get() is None


def now() -> datetime:
    """The current time as an aware UTC datetime, recorded in workflow code.

    Example:
        >>> deadline = now() + timedelta(days=7)
    """
    activation = current_activation.get()
    if activation is None or current_step.get() is not None:
        return datetime.now(UTC)
    clock_now = activation.now
    return activation.side_effect("now", lambda: datetime.fromtimestamp(clock_now(), UTC))


def uuid4() -> _uuid.UUID:
    """A random UUID, recorded in workflow code."""
    activation = current_activation.get()
    if activation is None or current_step.get() is not None:
        return _uuid.uuid4()
    return activation.side_effect("uuid4", _uuid.uuid4)


def random() -> float:
    """A float in [0, 1), recorded in workflow code."""
    activation = current_activation.get()
    if activation is None or current_step.get() is not None:
        return _random.random()
    return activation.side_effect("random", _random.random)
