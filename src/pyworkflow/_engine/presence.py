"""Showing this worker alive, and taking over at once the runs of workers known dead.

A lease says "alive" only until it lapses, so a worker killed mid-step used to keep its runs
for up to ``lease_seconds``. Each worker now also announces itself to storage, which makes
its death observable (``Storage.announce_owner``: a lock the operating system or the database
server drops with the process), and every worker looks for dead ones when it starts and then
about once a second: their runs and step attempts are free at once, and taken over as
recoveries (DESIGN §2.5), exactly as after a lapsed lease. A live worker, however slow or
stopped, keeps its lock, so it is never taken over while its lease holds; the lease stays the
fallback wherever death cannot be observed.

Should a worker's presence go while it lives (its PostgreSQL session dropped), it announces
itself again at once, retrying until storage answers. Lost to a server restart, nothing was
lost (nobody is declared dead just after a restart, and the worker keeps its runs); lost while
the server ran, others may have taken its runs for a dead worker's: ``on_lost`` then makes it
give them up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pyworkflow._backoff import Backoff
from pyworkflow._engine.engine import Engine
from pyworkflow.exceptions import PyWorkflowError

__all__ = ["Presence", "take_over_dead_owners"]

_log = logging.getLogger("pyworkflow.executor")

LOOK_EVERY = 1.0
"""Seconds between two looks for dead workers (one small query each)."""


async def take_over_dead_owners(engine: Engine) -> list[str]:
    """Free the runs and step attempts of workers known dead; their owner ids.

    Storage errors are logged, not raised: the leases of the dead still lapse on their own.
    """
    try:
        dead = await engine.storage.take_over_dead_owners(now=engine.clock.now())
    except PyWorkflowError as exc:
        _log.warning("could not look for dead workers: %s", exc)
        return []
    for owner in dead:
        _log.warning("worker %s is dead: its runs are taken over now", owner)
    return dead


class Presence:
    """This process's lease owner shown alive to the others, and its looks for dead ones.

    Args:
        engine: whose ``owner`` is shown alive.
        on_lost: called when the presence went while this process lives and others may have
            taken it for dead: give up every run.
    """

    def __init__(self, engine: Engine, on_lost: Callable[[], None] | None = None) -> None:
        self._engine = engine
        self._on_lost = on_lost
        self._shown = False
        self._was_lost = False
        self._warned = False
        self._showing = asyncio.Lock()
        self._again: asyncio.Task[None] | None = None
        self._withdrawn = False
        self._next_look = float("-inf")

    async def show(self) -> None:
        """Announce this owner, unless it is shown already; a failure is logged, not raised."""
        if self._shown:
            return
        async with self._showing:
            if self._shown:
                return
            self._withdrawn = False
            engine = self._engine
            try:
                continuous = await engine.storage.announce_owner(
                    engine.owner, now=engine.clock.now(), on_lost=self._lost
                )
            except PyWorkflowError as exc:
                if not self._warned:  # once per loss: a storage outage retries every second
                    self._warned = True
                    _log.warning(
                        "could not show this worker alive (%s); should it die, its runs wait "
                        "for their leases to lapse",
                        exc,
                    )
                return
            self._shown, self._warned = True, False
            if self._was_lost:
                self._was_lost = False
                if not continuous:
                    _log.warning(
                        "this worker's presence was lost while storage ran: other workers may "
                        "have taken it for dead and its runs over%s",
                        "; giving them up" if self._on_lost is not None else "",
                    )
                    if self._on_lost is not None:
                        self._on_lost()
                else:
                    _log.info("this worker's presence is shown again; it keeps its runs")

    async def look(self, *, now_or_never: bool = False) -> list[str]:
        """Take over the runs of dead workers, at most every ``LOOK_EVERY`` seconds.

        ``now_or_never``: look now whatever the time since the last look.
        """
        now = self._engine.clock.now()
        if not now_or_never and now < self._next_look:
            return []
        self._next_look = now + LOOK_EVERY
        return await take_over_dead_owners(self._engine)

    async def withdraw(self) -> None:
        """Stop showing this owner alive (it holds no run any more)."""
        self._withdrawn = True
        if self._again is not None:
            self._again.cancel()
        if not self._shown:
            return
        self._shown = False
        try:
            await self._engine.storage.withdraw_owner(self._engine.owner)
        except PyWorkflowError as exc:
            _log.warning("could not withdraw this worker's presence: %s", exc)

    def _lost(self) -> None:
        self._shown, self._was_lost = False, True
        if self._withdrawn:
            return  # it stops: nothing to show again
        _log.warning("this worker's presence in storage was lost (its connection dropped)")
        if self._again is None or self._again.done():
            self._again = asyncio.get_running_loop().create_task(self._show_again())

    async def _show_again(self) -> None:
        pauses = Backoff(0.1, 1.0)
        while not self._shown and not self._withdrawn:
            await self.show()
            if not self._shown:
                await asyncio.sleep(pauses.next())
