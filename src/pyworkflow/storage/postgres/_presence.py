"""A lease owner's presence on PostgreSQL: a session-level advisory lock on its own connection.

An owner takes ``pg_try_advisory_lock(NAMESPACE, key)`` with a random key, recorded in its
``owners`` row, on a connection kept out of the pool, and holds it while it lives. The server
drops the lock with the session: when the process dies its socket closes and the backend
ends, so ``pg_locks`` stops listing the key at once, from wherever it is read. A stopped or
slow process keeps its connection, so its lock.

The other way round, the lock can go while the process lives (the server restarted, the
network dropped, an administrator ended the session): ``on_lost`` then tells the owner to
give up its runs, which others may take over from that moment.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from pyworkflow.exceptions import StorageError
from pyworkflow.storage.sql._session import Row

__all__ = ["NAMESPACE", "AdvisoryLocks"]

NAMESPACE = 0x7077  # "pw": the first key of pyworkflow's two-key presence locks
"""``classid`` of pyworkflow's presence locks in ``pg_locks``; the second key is random."""

_TAKE = "SELECT pg_try_advisory_lock($1::int, $2::int)"
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
        self._held: dict[str, tuple[asyncpg.Connection, Callable[[Any], None]]] = {}

    async def hold(self, owner: str, on_lost: Callable[[], None] | None) -> int | None:
        """Open a connection and take a free key's lock on it; the key."""
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
        except BaseException as exc:
            conn.terminate()
            if isinstance(exc, Exception):
                raise StorageError(f"cannot take the lock that shows {owner} alive: {exc}") from exc
            raise

        def lost(_conn: Any) -> None:
            if self._held.get(owner, (None,))[0] is conn:
                del self._held[owner]
                if on_lost is not None:
                    on_lost()

        conn.add_termination_listener(lost)
        self._held[owner] = (conn, lost)
        return key

    async def drop(self, owner: str) -> None:
        """Close the owner's connection: the server drops its lock."""
        held = self._held.pop(owner, None)
        if held is None:
            return
        conn, lost = held
        conn.remove_termination_listener(lost)
        with contextlib.suppress(Exception):  # gone already: its lock went with it
            await conn.close(timeout=5)

    async def drop_all(self) -> None:
        """Drop every presence held here (the storage closes)."""
        for owner in list(self._held):
            await self.drop(owner)

    async def dead_among(self, rows: Sequence[Row]) -> list[str]:
        """The owners whose key no session of this database holds any more."""

        async def held_keys(conn: asyncpg.Connection, _retried: bool) -> set[int]:
            return {row[0] for row in await conn.fetch(_HELD, NAMESPACE)}

        held = await self._run(held_keys)
        return [
            owner
            for owner, _host, _pid, key in rows
            if key is not None and owner not in self._held and key not in held
        ]
