"""The executor's clock: where every engine time comes from (DESIGN §7).

Storage queries take ``now`` from this clock as a parameter, so the test toolkit can swap in a
virtual clock and drive the very same code through a week of sleeps in milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Time as the engine sees it, in float seconds since the epoch."""

    def now(self) -> float:
        """The current time."""

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline`` (or soon after)."""


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
