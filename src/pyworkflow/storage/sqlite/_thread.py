"""The database thread: one thread owns one connection and runs the queued jobs of any event loop.

Why this shape (measured against a raw ``sqlite3`` INSERT+COMMIT in WAL with
``synchronous=FULL``): one aiosqlite await per statement costs 2.4x, SQLAlchemy's async engine
statement by statement 7.5x, while a whole transaction that crosses to a database thread once
costs 1.1x. So a storage owns one :class:`DatabaseThread`, a daemon thread holding one SQLAlchemy
sync connection. An async method puts a :class:`Job` (a function of the connection: a script
of ``storage/sql/`` on SQLite's session) on its queue and awaits a future of its own event
loop, resolved with ``call_soon_threadsafe``; any loop may call.

Group commit: the thread takes every queued READ and WRITE job (up to :data:`MAX_BATCH`) and hands
them to the backend's ``run_batch`` at once, which runs them in one transaction and delivers each
outcome (``_batch.py``: ``BEGIN IMMEDIATE``, savepoints when needed, ``COMMIT``). An
ALONE job runs by itself, outside any transaction of ours; a STOP job closes the connection and
ends the thread.
The backend also says what its driver errors become (``translate``); ours pass through.

Only the SQLite backend needs this (asyncpg is async itself), so messages name SQLite storage.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from pyworkflow.exceptions import StorageError

__all__ = [
    "MAX_BATCH",
    "DatabaseThread",
    "Job",
    "RunBatch",
    "Translate",
    "deliver_all",
    "run_alone",
]

MAX_BATCH = 256
"""Jobs per transaction at most, so one huge burst does not hold the write lock for long."""

Translate = Callable[[BaseException, str], BaseException]
"""``translate(exc, url)``: a driver error as a StorageError (cause chained); others as they are."""


class Job:
    """One unit of work for the database thread and where to deliver its outcome."""

    __slots__ = ("fn", "future", "kind", "loop")

    READ, WRITE, ALONE, STOP = range(4)

    def __init__(
        self, fn: Callable[[sa.Connection], Any] | None, kind: int, loop: Any, future: Any
    ) -> None:
        self.fn = fn
        self.kind = kind
        self.loop = loop  # an asyncio loop, or None when ``future`` is a concurrent one
        self.future = future

    def deliver(self, ok: bool, value: Any) -> None:
        """Hand the outcome to the waiting caller, on its own thread or loop."""
        if self.future is None:
            return
        if self.loop is None:
            if not self.future.done():
                if ok:
                    self.future.set_result(value)
                else:
                    self.future.set_exception(value)
            return
        # The caller's loop may have closed meanwhile; nobody waits then.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_resolve, self.future, ok, value)


RunBatch = Callable[[sa.Connection, Any, list[Job], str], None]
"""``run_batch(conn, driver_connection, jobs, url)``: run READ and WRITE jobs, deliver each."""


def _resolve(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the caller was cancelled
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _resolve_all(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        _resolve(future, ok, value)


def deliver_all(jobs: list[Job], outcomes: list[tuple[bool, Any]]) -> None:
    """Deliver a batch's outcomes with one wake-up per event loop, not one per job.

    Each ``call_soon_threadsafe`` writes to the loop's self-pipe; a batch of 200 appends from
    one loop would otherwise cost 200 system calls and 200 wake-ups of the loop.
    """
    by_loop: dict[Any, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for job, (ok, value) in zip(jobs, outcomes, strict=True):
        if job.loop is None or job.future is None:
            job.deliver(ok, value)
        else:
            by_loop.setdefault(job.loop, []).append((job.future, ok, value))
    for loop, resolved in by_loop.items():
        # The caller's loop may have closed meanwhile; nobody waits then.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve_all, resolved)


def run_alone(conn: sa.Connection, job: Job, url: str, translate: Translate) -> tuple[bool, Any]:
    """Run one job as it is (no transaction of ours); returns its outcome."""
    assert job.fn is not None
    try:
        return True, job.fn(conn)
    except Exception as exc:
        return False, translate(exc, url)


class DatabaseThread:
    """A daemon thread that owns one connection of ``engine`` and runs the jobs put on it.

    Dropping the owner without :meth:`stop` still closes the connection (a finalizer queues a
    STOP job), so the thread's arguments must not refer back to the owner.

    Args:
        engine: connected to on the thread; disposed of when the thread ends.
        url: the database, for error messages.
        name: the thread's name.
        run_batch: runs a batch of READ and WRITE jobs in one transaction.
        translate: what the driver's errors become.
    """

    def __init__(
        self,
        engine: sa.Engine,
        url: str,
        *,
        name: str,
        run_batch: RunBatch,
        translate: Translate,
    ) -> None:
        self.url = url
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        thread = threading.Thread(
            target=_serve,
            args=(engine, self._jobs, url, run_batch, translate),
            name=name,
            daemon=True,
        )
        thread.start()
        self._thread: threading.Thread | None = thread
        self._finalizer = weakref.finalize(self, self._jobs.put, Job(None, Job.STOP, None, None))

    @property
    def running(self) -> bool:
        """Started and not yet told to stop."""
        return self._thread is not None

    def put(self, job: Job) -> None:
        """Queue a job; its outcome is delivered to its future."""
        self._jobs.put(job)

    def stop(self) -> None:
        """Finish the queued jobs, close the connection and join the thread (blocks). Idempotent.

        Jobs queued after the stop fail with StorageError.
        """
        thread, self._thread = self._thread, None
        if thread is not None:
            self._finalizer.detach()
            done: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._jobs.put(Job(None, Job.STOP, None, done))
            done.result()
            thread.join()
            _fail_pending(self._jobs, self.url)


def _serve(
    engine: sa.Engine,
    jobs: queue.SimpleQueue[Job],
    url: str,
    run_batch: RunBatch,
    translate: Translate,
) -> None:
    """The thread's body: connect, then run batches of jobs until a STOP job."""
    try:
        conn = engine.connect()
    except Exception as exc:
        error = translate(exc, url)
        engine.dispose()
        while True:  # fail everything until told to stop
            job = jobs.get()
            if job.kind == Job.STOP:
                job.deliver(True, None)
                return
            job.deliver(False, error)
    raw = conn.connection.driver_connection
    carry: Job | None = None
    stop: Job | None = None
    while stop is None:
        first = carry if carry is not None else jobs.get()
        carry = None
        if first.kind in (Job.ALONE, Job.STOP):
            if first.kind == Job.STOP:
                stop = first
                break
            first.deliver(*run_alone(conn, first, url, translate))
            continue
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                job = jobs.get_nowait()
            except queue.Empty:
                break
            if job.kind in (Job.ALONE, Job.STOP):
                carry = job
                break
            batch.append(job)
        run_batch(conn, raw, batch, url)
    conn.close()
    engine.dispose()
    _fail_pending(jobs, url)
    stop.deliver(True, None)


def _fail_pending(jobs: queue.SimpleQueue[Job], url: str) -> None:
    """Fail the jobs that raced with the stop."""
    closed = StorageError(f"SQLite storage {url} is closed")
    while True:
        try:
            jobs.get_nowait().deliver(False, closed)
        except queue.Empty:
            return
