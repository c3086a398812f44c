"""PostgreSQL connections: the pool, reconnection, group commits and LISTEN, per event loop.

``PostgresStorage`` runs every statement through :meth:`PgConnections.run`: a pooled
connection, and, when the connection is gone (the server restarted, the network dropped), a
retry on a new one with backoff for up to ``reconnect_timeout`` seconds; the function learns it
is a retry, so a write whose first attempt did commit can tell (``Session.retried``). Driver
errors are translated here: an unreachable server is StorageUnavailableError naming the URL
and what to check, any other driver error a StorageError with the cause chained.

Pools, the write groups and the listener belong to one event loop; a storage used from a new
loop (a second ``asyncio.run`` in a script) opens new ones there and drops the old.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from pyworkflow._backoff import Backoff
from pyworkflow.exceptions import PyWorkflowError, StorageError
from pyworkflow.storage.postgres._appends import AppendGroup
from pyworkflow.storage.postgres._creates import CreateGroup
from pyworkflow.storage.postgres._listen import ChangeListener, Subscriber
from pyworkflow.storage.postgres._schema import ensure_schema
from pyworkflow.storage.postgres._settings import PgSettings
from pyworkflow.storage.records import AppendResult, AppendWrite, NewRun, RunRecord

__all__ = ["PgConnections"]

_T = TypeVar("_T")

# The connection is gone or cannot be made: worth a retry on a new one.
_CONNECTION_LOST = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    # "cannot switch to state ...": a connection left mid-operation when its socket broke.
    asyncpg.InternalClientError,
    # The server is full for now (max_connections): wait for a slot like for a restart.
    asyncpg.TooManyConnectionsError,
)


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset of a connection going back to the pool.

    Its reset is a round trip per statement (``RESET ALL``, ``UNLISTEN *``, ...), doubling the
    cost of every call; our statements leave no session state behind (no LISTEN, SET or
    session-level lock on pooled connections), so there is nothing to reset.
    """


class PgConnections:
    """The connections of one PostgreSQL storage.

    Args:
        settings: where the database is and how to open it.
        reconnect_timeout: how long a statement keeps retrying while the server is unreachable.
    """

    def __init__(self, settings: PgSettings, *, reconnect_timeout: float) -> None:
        self.settings = settings
        self.url = settings.masked_url
        self.reconnect_timeout = reconnect_timeout
        self._pool: asyncpg.Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Lock | None = None
        self._schema_ready = False
        self._appends: AppendGroup | None = None
        self._creates: CreateGroup | None = None
        self._listener = ChangeListener(self.connect, settings.channel, self.url)
        self._closed = False

    async def open(self) -> None:
        """Create or check the schema and open the pool. Idempotent.

        Raises:
            StorageUnavailableError: the server cannot be reached; the message says what to check.
            SchemaVersionError: the schema is newer than this pyworkflow, or older and
                ``auto_upgrade`` is False.
        """
        if self._closed:
            raise StorageError(f"PostgreSQL storage {self.url} is closed")
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is loop:
            return
        if self._loop is not loop or self._opening is None:
            self._forget_loop()
            self._loop, self._opening = loop, asyncio.Lock()
        async with self._opening:
            if self._pool is not None:
                return
            try:
                if not self._schema_ready:
                    await ensure_schema(self.settings)
                    self._schema_ready = True
                self._pool = await asyncpg.create_pool(
                    self.settings.dsn,
                    min_size=0,  # no floor to restore (and log about) while the server restarts
                    max_size=self.settings.pool_size,
                    reset=_keep_session,
                    server_settings=self.settings.server_settings,
                    **self.settings.connect_kwargs,
                )
                self._appends = AppendGroup(
                    self.run, self.settings.channel, max_batches=self.settings.pool_size
                )
                self._creates = CreateGroup(
                    self.run, self.settings.channel, max_batches=self.settings.pool_size
                )
            except PyWorkflowError:
                raise
            except _CONNECTION_LOST as exc:
                raise self.settings.unreachable(exc) from exc
            except asyncpg.PostgresError as exc:
                raise StorageError(f"PostgreSQL storage {self.url}: {exc}") from exc

    def _forget_loop(self) -> None:
        """Drop the pool and listener of a previous event loop (which may be closed by now)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):  # its loop is gone: just drop the sockets
                pool.terminate()
        self._listener = ChangeListener(self.connect, self.settings.channel, self.url)
        self._appends = None
        self._creates = None

    async def close(self) -> None:
        """Stop listening and close every connection. Idempotent."""
        self._closed = True
        if self._loop is not asyncio.get_running_loop():
            self._forget_loop()  # opened on an earlier loop: its sockets can only be dropped
        await self._listener.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def connect(self) -> asyncpg.Connection:
        """A connection of its own, outside the pool (LISTEN, an owner's presence lock)."""
        return await asyncpg.connect(
            self.settings.dsn,
            server_settings=self.settings.server_settings,
            **self.settings.connect_kwargs,
        )

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(kind, run_id)`` when another process changes a run.

        ``kind`` is ``"runnable"`` (a run became due: claim it) or ``"ended"`` (a run reached a
        terminal status). After a lost connection, ``("runnable", "*")``: look at storage.
        """
        if self._loop is not asyncio.get_running_loop():
            self._forget_loop()
            self._loop, self._opening = asyncio.get_running_loop(), asyncio.Lock()
        self._listener.subscribe(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        """Stop calling ``callback``."""
        self._listener.unsubscribe(callback)

    async def append(self, write: AppendWrite) -> AppendResult:
        """Append through this loop's group commit (``_appends``)."""
        if self._appends is None or self._loop is not asyncio.get_running_loop():
            await self.open()
        assert self._appends is not None
        return await self._appends.submit(write)

    async def create_run(self, run: NewRun) -> tuple[RunRecord, bool]:
        """Create a run through this loop's group commit (``_creates``)."""
        if self._creates is None or self._loop is not asyncio.get_running_loop():
            await self.open()
        assert self._creates is not None
        return await self._creates.submit(run)

    async def run(self, fn: Callable[[asyncpg.Connection, bool], Awaitable[_T]]) -> _T:
        """``fn(conn, retried)`` on a pooled connection, retried while the connection is lost."""
        if self._pool is None or self._loop is not asyncio.get_running_loop():
            await self.open()
        pool = self._pool
        assert pool is not None
        deadline = time.monotonic() + self.reconnect_timeout
        delays = Backoff(0.05, 1.0)
        retried = False
        while True:
            delay = delays.next()
            try:
                async with pool.acquire() as conn:
                    try:
                        return await fn(conn, retried)
                    except _CONNECTION_LOST:
                        conn.terminate()  # never hand a broken connection out again
                        raise
            except PyWorkflowError:
                raise
            except _CONNECTION_LOST as exc:
                if time.monotonic() + delay > deadline:
                    raise self.settings.unreachable(exc) from exc
            except asyncpg.DeadlockDetectedError as exc:
                # A parent and its child ending at once each lock their own row, then the
                # other's (a cancel request, a signal); PostgreSQL breaks the cycle by rolling
                # one statement back whole. Every statement here commits on its own, so the
                # function may run again (as a retry: its caller checks what committed).
                if time.monotonic() + delay > deadline:
                    raise StorageError(f"PostgreSQL storage {self.url}: {exc}") from exc
            except Exception as exc:  # any other driver error: ours to translate, chained
                raise StorageError(
                    f"PostgreSQL storage {self.url}: {type(exc).__name__}: {exc}"
                ) from exc
            await asyncio.sleep(delay)
            retried = True
