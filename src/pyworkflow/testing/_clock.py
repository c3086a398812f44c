"""A virtual clock: time stands still while anything works, and skips when everything waits.

``VirtualClock`` implements the engine's ``Clock`` (``now()``, ``sleep_until()``), so the
executor, its timers and every storage query read the same virtual time. It moves in two ways:

- ``advance(seconds)``: on to a target, firing each deadline on the way in order, and letting
  the work each one triggers finish before the next;
- automatically, while someone waits on the environment (``autojumping()``; the environment
  enters it while a caller awaits a run's result): whenever nothing is working, it jumps to the
  earliest pending deadline, as trio's ``MockClock(autojump_threshold=0)`` does.

"Nothing is working" is decided, never guessed from wall time: every unit of work reports to the
clock (``working()``: a storage call, which may wait on a database thread, or a step attempt,
which may wait on real I/O), and between them the event loop must have no callback ready to run
(a turn of a workflow, a timer's hand-off to its run). Time never moves during work, so a step
racing a sleep in ``asyncio.gather`` always wins, and the same test writes the same history
every time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import math
import time
from collections.abc import Collection, Iterator

__all__ = ["VirtualClock"]

# Without a readable run queue (not CPython's event loop, e.g. uvloop), the loop counts as idle
# after this many consecutive passes with no work reported.
_FALLBACK_QUIET_PASSES = 50

# How many loop passes skip_to lets queued callbacks run before it gives up on skipping.
_SKIP_PASSES = 4


class VirtualClock:
    """The test environment's clock: virtual seconds since the epoch, moved by hand or by autojump.

    Use it through ``WorkflowEnvironment``, which reports storage calls and step attempts as
    work; a bare ``LocalExecutor(clock=VirtualClock())`` on a threaded storage could skip time
    while a write is still on the database thread.

    Example:
        >>> clock = VirtualClock(start=0.0)
        >>> await clock.advance(3600)  # doctest: +SKIP
        >>> clock.now()  # doctest: +SKIP
        3600.0

    Args:
        start: the first reading, in epoch seconds; defaults to the wall clock.
        max_skip: the longest single automatic skip, in seconds. Deadlines further away are left
            for ``advance``: the environment's own housekeeping (lease renewals) lies there, and
            skipping to it would only turn a run that waits on nothing into a busy loop.
    """

    def __init__(self, start: float | None = None, *, max_skip: float = math.inf) -> None:
        self._now = time.time() if start is None else float(start)
        self.max_skip = max_skip
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._abandoned = 0
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._autojumpers = 0
        self._advancing = 0
        self._kick = asyncio.Event()
        self._jumper: asyncio.Task[None] | None = None
        # The tasks inside settle() now: their own wake-ups are no work to one another.
        self._settling: set[asyncio.Task[object]] = set()

    # --- the Clock protocol ----------------------------------------------------------------------

    def now(self) -> float:
        """The virtual time, in epoch seconds."""
        return self._now

    async def sleep_until(self, deadline: float) -> None:
        """Return once the virtual time reaches ``deadline`` (an infinite one never comes)."""
        if deadline <= self._now:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not math.isfinite(deadline):
            await future  # only cancellation ends it
        # When this task is the last one running, skip now rather than one loop pass later in
        # the autojump task; if its deadline is the very next, without waiting at all.
        idle = self._idle_now()
        first = self._next_deadline()
        if idle and (first is None or deadline < first) and deadline - self._now <= self.max_skip:
            self._fire(deadline)
            return
        heapq.heappush(self._sleepers, (deadline, next(self._order), future))
        if idle and self._may_jump():
            self._jump()  # ties fire in the order their sleepers went to sleep
        else:
            self._poke()
        try:
            await future
        except asyncio.CancelledError:
            self._forget_abandoned()
            raise

    async def skip_to(self, deadline: float) -> bool:
        """Jump to ``deadline`` at once if autojump would: nothing works, nothing comes earlier.

        The caller (a run's driver, about to set a timer for ``deadline``) then fires that timer
        itself instead of sleeping on it. Callbacks already queued (another task's next step, a
        finished task's bookkeeping) run first, for a few loop passes; work in progress
        elsewhere (a step, a storage call) means no.
        """
        if deadline <= self._now:
            return True
        loop = asyncio.get_running_loop()
        for _ in range(_SKIP_PASSES):
            if not self._autojumpers or self._advancing or self._busy:
                return False
            # The autojump task itself may be queued (it settles by yielding): it is no work,
            # nor is any task settling.
            queued = self._settling if self._jumper is None else {*self._settling, self._jumper}
            if _ready_callbacks(loop, besides=queued) == 0:
                break
            await asyncio.sleep(0)
        else:
            return False
        first = self._next_deadline()
        if (first is not None and first <= deadline) or deadline - self._now > self.max_skip:
            return False
        self._fire(deadline)
        return True

    # --- moving time -----------------------------------------------------------------------------

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing the deadlines on the way in order.

        Before each deadline fires, and before returning, the work already triggered finishes
        (steps, storage writes, workflow turns), so a caller looks at a settled state.
        """
        target = self._now + seconds
        self._advancing += 1
        try:
            while True:
                await self.settle()
                deadline = self._next_deadline()
                if deadline is None or deadline > target:
                    break
                self._fire(deadline)
            self._now = max(self._now, target)
        finally:
            self._advancing -= 1
            self._poke()

    @contextlib.contextmanager
    def autojumping(self) -> Iterator[None]:
        """Inside the block, skip to the next deadline whenever nothing is working."""
        if self._jumper is None or self._jumper.done():
            self._jumper = asyncio.get_running_loop().create_task(
                self._autojump(), name="pyworkflow-virtual-clock"
            )
        self._autojumpers += 1
        self._poke()
        try:
            yield
        finally:
            self._autojumpers -= 1

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        """Count the block as work: time does not skip until it ends."""
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()
                self._poke()

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Inside work (a step), a wait on something else (a child run): not work meanwhile.

        Without it a step waiting for a child that sleeps would hold time still forever.
        """
        self._busy -= 1
        if not self._busy:
            self._idle.set()
            self._poke()
        try:
            yield
        finally:
            self._busy += 1
            self._idle.clear()

    async def settle(self) -> None:
        """Return once nothing is working and no callback is ready to run.

        Several tasks may settle at once (``advance`` and the autojump task, which may still be
        settling for a caller that has stopped waiting); each returns once only settling tasks
        are left to run.
        """
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        if me is not None:
            self._settling.add(me)
        try:
            quiet = 0
            while True:
                if self._busy:
                    quiet = 0
                    await self._idle.wait()
                await asyncio.sleep(0)
                if self._busy:
                    continue
                # A settling task only yields, so its wake-up in the run queue is no work. Were
                # it counted, two settlers would each find the other's wake-up queued at every
                # pass, forever: ``advance`` right after a result that left the autojump task
                # settling hung. Whichever returns first acts before the other looks again, so
                # the other then sees what that woke (and the autojump task re-checks that no
                # one advances): time still moves only when nothing works.
                ready = _ready_callbacks(loop, besides=self._settling)
                if ready == 0 or (ready is None and quiet >= _FALLBACK_QUIET_PASSES):
                    return
                quiet += 1
        finally:
            if me is not None:
                self._settling.discard(me)

    async def aclose(self) -> None:
        """Stop skipping time automatically (the environment calls this on exit)."""
        jumper, self._jumper = self._jumper, None
        if jumper is not None:
            jumper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await jumper

    # --- internals -------------------------------------------------------------------------------

    def _poke(self) -> None:
        if self._may_jump():
            self._kick.set()

    def _may_jump(self) -> bool:
        """Someone waits, nobody advances by hand, and a deadline lies within ``max_skip``."""
        if not self._autojumpers or self._advancing:
            return False
        deadline = self._next_deadline()
        return deadline is not None and deadline - self._now <= self.max_skip

    async def _autojump(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            if not self._may_jump():
                continue
            await self.settle()
            # Re-checked after settling: a caller may have stopped waiting, or advance() begun.
            if self._may_jump():
                self._jump()
                self._kick.set()  # look again once what the deadline woke has settled

    def _idle_now(self) -> bool:
        """Someone waits, nobody advances, nothing works and no other callback is ready."""
        if not self._autojumpers or self._advancing or self._busy:
            return False
        return _ready_callbacks(asyncio.get_running_loop()) == 0

    def _jump(self) -> None:
        """Skip to the earliest deadline (``_may_jump`` said there is one)."""
        deadline = self._next_deadline()
        assert deadline is not None
        self._fire(deadline)

    def _next_deadline(self) -> float | None:
        sleepers = self._sleepers
        while sleepers and sleepers[0][2].done():
            heapq.heappop(sleepers)
            self._abandoned = max(0, self._abandoned - 1)
        return sleepers[0][0] if sleepers else None

    def _fire(self, deadline: float) -> None:
        """Set the time to ``deadline`` and wake its sleepers, in the order they went to sleep."""
        self._now = max(self._now, deadline)
        sleepers = self._sleepers
        while sleepers and sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(sleepers)
            if future.done():
                self._abandoned = max(0, self._abandoned - 1)
            else:
                future.set_result(None)

    def _forget_abandoned(self) -> None:
        # Cancelled sleepers stay in the heap until they reach its top; the claim loop abandons
        # one far-off timer each time it is woken, so compact once they are the majority.
        self._abandoned += 1
        if self._abandoned > 64 and self._abandoned * 2 > len(self._sleepers):
            self._sleepers = [s for s in self._sleepers if not s[2].done()]
            heapq.heapify(self._sleepers)
            self._abandoned = 0


def _ready_callbacks(
    loop: asyncio.AbstractEventLoop, besides: Collection[asyncio.Task[object]] = ()
) -> int | None:
    """How many callbacks wait in the loop's run queue, or None if it cannot be read.

    CPython's event loops keep it in ``_ready``; reading it is the only exact way to tell
    "every task waits" from "a task is about to run" without owning the loop. A step or
    wake-up of a task in ``besides`` is not counted.
    """
    ready = getattr(loop, "_ready", None)
    if not isinstance(ready, collections.deque):
        return None
    if not besides:
        return len(ready)
    # By identity: a callback's owner may be any object, hashable or not.
    skip = {id(task) for task in besides}
    return sum(1 for h in ready if id(getattr(h._callback, "__self__", None)) not in skip)
