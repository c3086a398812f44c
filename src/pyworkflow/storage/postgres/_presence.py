"""A lease owner's presence on PostgreSQL: a session-level advisory lock on its own connection.

An owner takes ``pg_try_advisory_lock(NAMESPACE, key)`` with a random key, recorded in its
``owners`` row, on a connection kept out of the pool, and holds it while it lives. The server
drops the lock with the session: when the process dies its socket closes and the backend
ends, so ``pg_locks`` stops listing the key at once, from wherever it is read. A stopped or
slow process keeps its connection, so its lock.

The other way round, the lock can go while the process lives. When the server restarts, every
owner loses its lock at once and takes it again once the server is back: so nobody is
declared dead until the server has been up for ``RESTART_GRACE`` seconds, and an owner that
takes its lock again within that grace of a restart lost nothing (``hold`` says so: its runs
stay its own, and a step running through the restart runs once). When only the owner's
connection dropped (the network, an administrator ending the session), the others may have
taken it for dead meanwhile: ``hold`` says so too, and the owner gives its runs up.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from pyworkflow.exceptions import StorageError
from pyworkflow.storage.sql._session import Row

__all__ = ["NAMESPACE", "RESTART_GRACE", "AdvisoryLocks"]

NAMESPACE = 0x7077  # "pw": the first key of pyworkflow's two-key presence locks
"""``classid`` of pyworkflow's presence locks in ``pg_locks``; the second key is random."""

RESTART_GRACE = 10.0
"""Seconds after the server starts during which no owner is declared dead.

Long enough for every live owner to reconnect and take its lock again (they retry within a
second or two); an owner that died meanwhile is taken over when the grace ends.
"""

_TAKE = "SELECT pg_try_advisory_lock($1::int, $2::int)"
_SERVER = """
SELECT extract(epoch FROM pg_postmaster_start_time())::float8,
       extract(epoch FROM now() - pg_postmaster_start_time())::float8
"""
_HELD = """
SELECT objid::bigint FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = $1::int::oid
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""

Connect = Callable[[], Awaitable[asyncpg.Connection]]
RunOnPool = Callable[[Callable[[asyncpg.Connection, bool], Awaitable[Any]]], Awaitable[Any]]


class AdvisoryLocks:
    """The ``Presences`` of a PostgreSQL database (see the module docstring)."""

    def __init__(self, connect: Connect, run: RunOnPool) -> None:
        self._connect = connect
        self._run = run
        self._held: dict[str, tuple[asyncpg.Connection, Callable[[Any], None], float]] = {}
        self._lost: dict[str, float] = {}  # owner -> the server start its lost lock was held in
        self._closed = False

    async def hold(self, owner: str, on_lost: Callable[[], None] | None) -> tuple[int | None, bool]:
        """Take a free key's lock on a connection of its own: the key, and whether no gap showed.

        The second value is False when the owner lost an earlier lock while the server kept
        running (or restarted longer than ``RESTART_GRACE`` ago): others may have taken it
        for dead in between.
        """
        await self.drop(owner)
        try:
            conn = await self._connect()
        except Exception as exc:
            raise StorageError(
                f"cannot open the connection that shows {owner} alive: {exc}"
            ) from exc
        try:
            while True:
                key = 1 + secrets.randbelow(2**31 - 2)
                if await conn.fetchval(_TAKE, NAMESPACE, key):
                    break  # a key another owner holds is refused: draw again
            started, uptime = await conn.fetchrow(_SERVER)
        except BaseException as exc:
            conn.terminate()
            if isinstance(exc, Exception):
                raise StorageError(f"cannot take the lock that shows {owner} alive: {exc}") from exc
            raise
        held_in = self._lost.pop(owner, None)
        continuous = held_in is None or (held_in != started and uptime < RESTART_GRACE)

        if self._closed:  # the storage closed while this one was being taken
            conn.terminate()
            raise StorageError(f"cannot show {owner} alive: the storage is closed")

        def lost(_conn: Any) -> None:
            conn.terminate()  # its socket is gone: let its transport go now, not at GC
            if self._held.get(owner, (None,))[0] is conn:
                del self._held[owner]
                self._lost[owner] = started
                if on_lost is not None:
                    on_lost()

        conn.add_termination_listener(lost)
        self._held[owner] = (conn, lost, started)
        return key, continuous

    async def drop(self, owner: str) -> None:
        """Close the owner's connection: the server drops its lock."""
        held = self._held.pop(owner, None)
        if held is None:
            return
        conn, lost, _started = held
        conn.remove_termination_listener(lost)
        with contextlib.suppress(Exception):  # gone already: its lock went with it
            await conn.close(timeout=5)

    async def drop_all(self) -> None:
        """Drop every presence held here (the storage closes); hold nothing afterwards."""
        self._closed = True
        for owner in list(self._held):
            await self.drop(owner)
        self._lost.clear()

    async def dead_among(self, rows: Sequence[Row]) -> list[str]:
        """The owners whose key no session holds, unless the server has just started."""

        async def look(conn: asyncpg.Connection, _retried: bool) -> tuple[float, set[int]]:
            _started, uptime = await conn.fetchrow(_SERVER)
            return uptime, {row[0] for row in await conn.fetch(_HELD, NAMESPACE)}

        uptime, held = await self._run(look)
        if uptime < RESTART_GRACE:
            return []  # live owners may not have taken their locks again yet
        return [
            owner
            for owner, _host, _pid, key in rows
            if key is not None and owner not in self._held and key not in held
        ]
