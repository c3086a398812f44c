"""Exponential backoff: pauses that double from a first one up to a longest one.

For every loop that waits before looking again or trying again: a retry of what failed (a lost
connection, a sweeper that crashed) or another look at what has not changed yet (a run still
running, a lease still held). A leaf module: storage, the engine, executors and the client use it.

Example:
    >>> pauses = Backoff(0.05, 1.0)
    >>> [pauses.next() for _ in range(6)]
    [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]
"""

from __future__ import annotations

__all__ = ["Backoff"]


class Backoff:
    """Pauses from ``first``, each twice the one before, never longer than ``longest``."""

    __slots__ = ("_next", "first", "longest")

    def __init__(self, first: float, longest: float) -> None:
        self.first, self.longest = first, longest
        self._next = first

    def next(self) -> float:
        """The pause to take now; the one after is twice as long (up to ``longest``)."""
        pause = self._next
        self._next = min(pause * 2, self.longest)
        return pause

    def reset(self) -> None:
        """Start again from ``first`` (something changed, or a try succeeded)."""
        self._next = self.first
