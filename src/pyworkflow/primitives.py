"""Workflow primitives: what workflow code awaits besides steps.

Each primitive checks where it runs: in workflow code it becomes a durable command; in a step
(or plain code) it does the ordinary, non-durable thing, or raises a typed error when there is
none (DESIGN §1).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pyworkflow._engine.context import current_activation, current_step
from pyworkflow.durations import resolve_wake_time

__all__ = ["sleep"]


async def sleep(duration: str | float | timedelta | datetime) -> None:
    """Wait for a duration or until an aware datetime.

    In workflow code the wait is durable: the wake-up time is stored, the run suspends and holds
    no worker, and it wakes when due, also after a restart. In a step (or outside pyworkflow)
    it is ``asyncio.sleep``: the worker is held and a crash loses the wait.

    Example:
        >>> @workflow()
        ... async def reminder(user_id: str) -> None:
        ...     await sleep("3d")
        ...     await send_reminder(user_id)

    Raises:
        InvalidDurationError: ``"5 parsecs"``, ``"-1s"``, NaN, a naive datetime ...
    """
    activation = current_activation.get()
    if activation is not None and current_step.get() is None:
        await activation.sleep_until(resolve_wake_time(duration, activation.now()))
        return
    loop = asyncio.get_running_loop()
    wake_at = resolve_wake_time(duration, loop.time())
    await asyncio.sleep(max(0.0, wake_at - loop.time()))
