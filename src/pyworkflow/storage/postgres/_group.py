"""Group commit on PostgreSQL: concurrent writes of many runs share one statement and one commit.

Why: each write alone is a round trip and a commit, and on a small machine PostgreSQL's CPU per
commit, and the client's per-statement cost, not the disk, bound how many steps per second
concurrent runs reach (B2 on PostgreSQL). So writes queue here; up to ``max_batches`` batches
are in flight at once (each on a pooled connection), and whatever queued meanwhile goes out
together as one statement. A write made while nothing is under way (B1) leaves at once from
its caller's task, with no hand-off to another task; a write made while one is under way queues,
even with connections free, so that the writes of one pass of the event loop (a burst of starts,
runs whose steps ended together) share one statement rather than one commit each.

Each write still succeeds or fails on its own: a statement that fails as a whole (which a
correct write never causes) is retried one write at a time, so only the faulty write fails. A
batch holds at most one write per run: a second write of the same run waits for the next
batch, after the first has committed.

Subclasses say how a batch is written (:meth:`WriteGroup._execute`): appends (``_appends``)
and run creations (``_creates``).
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

import asyncpg

from pyworkflow.exceptions import PyWorkflowError, StorageError, StorageUnavailableError

__all__ = ["RunOnConnection", "WriteGroup", "outcome"]

MAX_BATCH = 200

RunOnConnection = Callable[[Callable[[asyncpg.Connection, bool], Awaitable[Any]]], Awaitable[Any]]


class _OfRun(Protocol):
    @property
    def run_id(self) -> str: ...


W = TypeVar("W", bound=_OfRun)
R = TypeVar("R")
T = TypeVar("T")


async def outcome(script: Awaitable[T]) -> T | BaseException:
    """What ``script`` returns, or the error it raises for its write: one write's outcome.

    A batch hands each write its own result or error (:meth:`WriteGroup._execute`), so a
    write's error is a value there, not raised.
    """
    try:
        return await script
    except PyWorkflowError as exc:
        return exc


class WriteGroup(Generic[W, R]):
    """Queues writes of type ``W`` and sends them in shared statements; each gets its own ``R``.

    Args:
        run: the storage's ``run``: calls a function on a pooled connection, retrying while the
            connection is lost (the function learns whether it is a retry).
        max_batches: batches in flight at once (at most the pool's size).
    """

    def __init__(self, run: RunOnConnection, max_batches: int) -> None:
        self._run = run
        self._max_batches = max(1, max_batches)
        self._queue: deque[tuple[W, asyncio.Future[R]]] = deque()
        self._in_flight = 0
        self._drain_due = False  # a drain task is started and has not taken its batch yet
        self._tasks: set[asyncio.Task[None]] = set()

    async def _execute(
        self, conn: asyncpg.Connection, writes: list[W], retried: bool
    ) -> list[R | BaseException]:
        """Write ``writes`` (one per run) on ``conn``; one result or error per write, in order."""
        raise NotImplementedError

    def _goes_alone(self, write: W) -> bool:
        """Whether ``write`` takes a statement of its own whatever is queued (no, by default)."""
        return False

    async def submit(self, write: W) -> R:
        """Send ``write`` in the next batch; its own result or error."""
        if self._goes_alone(write):
            return await self._send_alone(write)
        if not self._in_flight:
            # Nothing under way (B1): send it alone from the caller's task, with no hand-off.
            self._in_flight += 1
            try:
                return await self._send_alone(write)
            finally:
                self._in_flight -= 1
                self._start_draining()
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((write, future))
        self._start_draining()
        return await future

    async def _send_alone(self, write: W) -> R:
        (outcome,) = await self._send([write])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _start_draining(self) -> None:
        # One drain task at a time waits to take a batch: whatever queues before it runs (the
        # writes of one pass of the event loop, say) leaves together, in one statement.
        if self._queue and not self._drain_due and self._in_flight < self._max_batches:
            self._in_flight += 1
            self._drain_due = True
            task = asyncio.get_running_loop().create_task(self._drain(), name="pyworkflow-write")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        self._drain_due = False  # this task takes the next batch now
        try:
            while self._queue:
                batch = self._take()
                self._start_draining()  # for what is left of the queue, or queues meanwhile
                try:
                    outcomes = await self._send([write for write, _ in batch])
                except Exception as exc:  # a bug of ours: fail the batch, never leave it hanging
                    outcomes = [StorageError(f"write failed: {exc!r}") for _ in batch]
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue  # its caller was cancelled; the write may still have committed
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._in_flight -= 1

    def _take(self) -> list[tuple[W, asyncio.Future[R]]]:
        """Up to ``MAX_BATCH`` queued writes, one per run, in queue order."""
        batch: list[tuple[W, asyncio.Future[R]]] = []
        later: list[tuple[W, asyncio.Future[R]]] = []
        runs: set[str] = set()
        while self._queue and len(batch) < MAX_BATCH:
            item = self._queue.popleft()
            (later if item[0].run_id in runs else batch).append(item)
            runs.add(item[0].run_id)
        self._queue.extendleft(reversed(later))
        return batch

    async def _send(self, writes: list[W]) -> list[R | BaseException]:
        try:
            outcomes: list[R | BaseException] = await self._run(
                lambda conn, retried: self._execute(conn, writes, retried)
            )
            return outcomes
        except StorageUnavailableError as exc:  # no write of the batch can go through now
            return [copy.copy(exc) for _ in writes]
        except PyWorkflowError as exc:
            if len(writes) == 1:
                return [exc]
        # The statement failed as a whole: find the faulty write by sending each alone.
        outcomes = []
        for write in writes:
            outcomes.extend(await self._send([write]))
        return outcomes
