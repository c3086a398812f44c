"""The executor's clock: where every engine time comes from (DESIGN §7).

Storage queries take ``now`` from this clock as a parameter, so the test toolkit can swap in a
virtual clock and drive the very same code through a week of sleeps in milliseconds.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

__all__ = ["Clock", "SystemClock", "until_set", "within"]

_T = TypeVar("_T")


class Clock(Protocol):
    """Time as the engine sees it, in float seconds since the epoch."""

    def now(self) -> float:
        """The current time."""

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline`` (or soon after)."""

    async def skip_to(self, deadline: float) -> bool:
        """Make ``deadline`` the time now, if this clock may; True if it did.

        Only a virtual clock can, and only when nothing else works or waits for an earlier
        time: the skip is then what it would do anyway a moment later, and the driver may fire
        the timer in the turn that set it, sparing a turn and a commit (DESIGN §6).
        """


class SystemClock:
    """Wall-clock time; the default of every executor."""

    def now(self) -> float:
        """``time.time()``."""
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep on the event loop until the wall clock passes ``deadline``."""
        delay = deadline - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def skip_to(self, deadline: float) -> bool:
        """Wall-clock time cannot skip: False."""
        return False


async def within(clock: Clock, deadline: float, work: Awaitable[_T]) -> _T:
    """``await work``, or TimeoutError once ``clock`` passes ``deadline`` (``work`` is cancelled).

    On the engine's clock rather than an asyncio timeout, so that a virtual clock sees it.
    """
    task = asyncio.ensure_future(work)
    timer = asyncio.ensure_future(clock.sleep_until(deadline))
    try:
        await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
            # Whatever it ends with now is nobody's business: retrieve it, so it is not logged.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
    if not task.done() or task.cancelled():
        raise TimeoutError(f"no answer before the deadline {deadline:.3f}")
    return task.result()


async def until_set(clock: Clock, event: asyncio.Event, deadline: float) -> None:
    """Wait for ``event`` to be set or for ``clock`` to pass ``deadline`` (infinite: no timer).

    On the engine's clock, so that a virtual clock sees the deadline. Not asyncio.wait_for: on
    3.11 it can swallow a cancellation that arrives together with the event, and a shutdown
    waiting on the waiter would wait forever.
    """
    if not math.isfinite(deadline):
        await event.wait()
        return

    async def ring() -> None:
        await clock.sleep_until(deadline)
        event.set()

    timer = asyncio.get_running_loop().create_task(ring(), name="pyworkflow-deadline")
    try:
        await event.wait()
    finally:
        timer.cancel()
