"""PostgreSQL storage: asyncpg, one round trip per write, SKIP LOCKED claims, LISTEN/NOTIFY.

The Storage protocol on PostgreSQL: the SQL backends' scripts (``storage/sql/``) run on
PostgreSQL's session (``_session.py``), whose steps send each write as one statement composed
of the shared statements (``_one_trip.py``, ``_effects.py``), compiled for asyncpg by
``_query.py``. What else is PostgreSQL's, each in a module of its own: URL options
(``_settings.py``), schema creation under an advisory lock (``_schema.py``), the pool,
reconnection and error translation (``_connections.py``), group commit (``_group.py``) of
appends (``_appends.py``) and run creations (``_creates.py``), and LISTEN (``_listen.py``).

Concurrency: many workers, on many machines, share one database. Every write is one statement
in its own implicit transaction (a copy's whole runs aside: ``_run_whole``); the conditional
UPDATEs of the shared statements decide races (PostgreSQL re-checks a row's condition after
waiting for its lock), and claims lock candidates with ``FOR UPDATE SKIP LOCKED``, so two
workers never claim one run and never wait on each other.

Reconnection: a statement that fails because the connection is gone (the server restarted) is
retried on a fresh connection, with backoff, for up to ``reconnect_timeout`` seconds. A retried
write whose first attempt did commit is recognised by its script (``Session.retried``: its run
id exists; its run's row already shows it) and reported as done, not as a conflict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import asyncpg

from pyworkflow.storage.postgres._connections import PgConnections
from pyworkflow.storage.postgres._fires import fire_batch
from pyworkflow.storage.postgres._listen import Subscriber
from pyworkflow.storage.postgres._presence import AdvisoryLocks
from pyworkflow.storage.postgres._session import PgSession
from pyworkflow.storage.postgres._settings import PgSettings, parse_url
from pyworkflow.storage.records import AppendResult, AppendWrite, NewRun, RunRecord, ScheduleFire
from pyworkflow.storage.sql import Script, SqlStorage

__all__ = ["PostgresStorage"]

_T = TypeVar("_T")


class PostgresStorage(SqlStorage):
    """Storage in a PostgreSQL database, shared by any number of workers on any machines.

    Args:
        url: ``postgresql://user:password@host:port/database`` (also ``postgresql+asyncpg://``
            and ``postgres://``). Query options, also accepted as arguments: ``pool_size``,
            ``statement_timeout`` (a duration: ``30s``), ``create`` and ``auto_upgrade``
            (``true``/``false``), ``schema``; any other option goes to asyncpg
            (``sslmode=require``, say).
        pool_size: connections this process keeps open at most (default 10).
        statement_timeout: the server cancels a statement running longer (default: none).
        create: create the database, when missing, and the schema (default True).
        auto_upgrade: migrate an older schema on open (default True); when False, an older
            schema raises SchemaVersionError naming ``pyworkflow db upgrade``.
        schema: keep pyworkflow's tables in this PostgreSQL schema (created when missing)
            instead of the user's default one.
        reconnect_timeout: how long a statement keeps retrying while the server is unreachable.

    Example:
        >>> storage = PostgresStorage("postgresql://app@db.internal/app?pool_size=20")
        >>> await storage.open()  # doctest: +SKIP
    """

    url: str
    """The URL with its password masked."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int | None = None,
        statement_timeout: float | None = None,
        create: bool | None = None,
        auto_upgrade: bool | None = None,
        schema: str | None = None,
        reconnect_timeout: float = 30.0,
    ) -> None:
        self.settings: PgSettings = parse_url(
            url,
            pool_size=pool_size,
            statement_timeout=statement_timeout,
            create=create,
            auto_upgrade=auto_upgrade,
            schema=schema,
        )
        self.url = self.settings.masked_url
        self._db = PgConnections(self.settings, reconnect_timeout=reconnect_timeout)
        self._owner_locks = AdvisoryLocks(self._db.connect, self._db.run)

    def __repr__(self) -> str:
        return f"PostgresStorage({self.url!r})"

    @classmethod
    def from_url(cls, url: str) -> PostgresStorage:
        """A PostgresStorage for ``url``, its options read from the URL's query (see the class)."""
        return cls(url)

    @property
    def create(self) -> bool:
        """Whether a missing database and schema are created on open."""
        return self.settings.create

    @create.setter
    def create(self, value: bool) -> None:
        self.settings.create = value

    @property
    def auto_upgrade(self) -> bool:
        """Whether an older schema is migrated on open."""
        return self.settings.auto_upgrade

    @auto_upgrade.setter
    def auto_upgrade(self, value: bool) -> None:
        self.settings.auto_upgrade = value

    # --- life cycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Create or check the schema and open the pool. Idempotent.

        Raises:
            StorageUnavailableError: the server cannot be reached; the message says what to check.
            SchemaVersionError: the schema is newer than this pyworkflow, or older and
                ``auto_upgrade`` is False.
        """
        await self._db.open()

    async def close(self) -> None:
        """Stop listening and close every connection. Idempotent."""
        await self._owner_locks.drop_all()
        await self._db.close()

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(kind, run_id)`` when another process changes a run.

        ``kind`` is ``"runnable"`` (a run became due: claim it) or ``"ended"`` (a run reached a
        terminal status). After a lost connection, ``("runnable", "*")``: look at storage.
        """
        self._db.subscribe(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        """Stop calling ``callback``."""
        self._db.unsubscribe(callback)

    @property
    def _presences(self) -> AdvisoryLocks:
        return self._owner_locks

    # --- how a script runs ----------------------------------------------------------------------

    async def _run(self, script: Script[_T], *, writes: bool) -> _T:
        """Run ``script`` on a pooled connection, each of its statements committing on its own.

        Retried on a new connection while the connection is lost, the script told so
        (``Session.retried``).
        """
        channel = self.settings.channel
        return await self._db.run(lambda conn, retried: script(PgSession(conn, retried, channel)))

    async def _run_whole(self, script: Script[_T], *, writes: bool) -> _T:
        """Run ``script`` in one transaction block: REPEATABLE READ, so it sees one snapshot.

        The only scripts here that span a transaction: reading and writing runs whole
        (``_scripts/snapshots.py``). A read is READ ONLY; a write commits all or nothing (a
        retry after a lost connection checks whether its first attempt committed).
        """
        channel = self.settings.channel

        async def whole(conn: asyncpg.Connection, retried: bool) -> _T:
            async with conn.transaction(isolation="repeatable_read", readonly=not writes):
                return await script(PgSession(conn, retried, channel))

        return await self._db.run(whole)

    async def _run_atomic(self, script: Script[_T]) -> _T:
        """Run ``script`` in one READ COMMITTED transaction block: all its writes or none.

        Firing a schedule writes its state and its slots' runs: one transaction, so a slot is
        consumed exactly when its run exists. READ COMMITTED, so that two schedulers racing on
        one schedule decide by its conditional UPDATE (the loser's changes no row) rather
        than by a serialization failure. A retry after a lost connection finds the version
        moved on if the first attempt committed, and writes nothing.
        """
        channel = self.settings.channel

        async def atomic(conn: asyncpg.Connection, retried: bool) -> _T:
            async with conn.transaction():
                return await script(PgSession(conn, retried, channel))

        return await self._db.run(atomic)

    async def fire_schedules(self, fires: Sequence[ScheduleFire]) -> list[list[str] | None]:
        """A tick's fires in one transaction of three statements (``_fires``)."""
        if not fires:
            return []
        channel = self.settings.channel
        return await self._db.run(lambda conn, retried: fire_batch(conn, retried, channel, fires))

    async def create_run(self, run: NewRun) -> tuple[RunRecord, bool]:
        """Insert a run and its first events in one statement; see ``Storage.create_run``.

        Runs started at once share a statement (group commit, ``_creates``).
        """
        return await self._db.create_run(run)

    async def append(self, write: AppendWrite) -> AppendResult:
        """Apply one turn atomically; concurrent appends share a statement (``_appends``)."""
        return await self._db.append(write)
