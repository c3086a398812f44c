"""SQLite storage: WAL, ``busy_timeout``, ``BEGIN IMMEDIATE`` and group commit.

The writes and reads are the SQL backends' scripts (``storage/sql/``), run on SQLite's session
(``_session.py``). What is SQLite's lives here and beside it: URL parsing, the pragmas and the
schema check; the database thread that owns the connection (``_thread.py``: why, and how jobs
are queued and batched), the pysqlite driver in autocommit mode so that we issue ``BEGIN
IMMEDIATE`` / ``COMMIT`` ourselves; how a batch of jobs runs, and error translation
(``_batch.py``).

Group commit: a batch runs in one ``BEGIN IMMEDIATE ... COMMIT``, each write failing on its own,
so one job's error (a stale append, say) rolls back only that job and reaches only its caller,
while the others share one durable commit. A failed COMMIT fails every job of the batch.
Batches of reads only run without a transaction.

Other processes may open the same file: ``BEGIN IMMEDIATE`` takes SQLite's write lock up front
(waiting up to ``busy_timeout``), so writers of all processes are serialised: the conditional
UPDATEs of the scripts see each other's commits, and nothing comes between the two statements
of a claim (``Session.claim``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import parse_qsl

import sqlalchemy as sa

from pyworkflow.exceptions import ConfigurationError, StorageError
from pyworkflow.storage._backends import masked
from pyworkflow.storage.records import ScheduleFire
from pyworkflow.storage.sql import Script, Session, SqlStorage
from pyworkflow.storage.sql.migrate import (
    HEAD_REVISION,
    current_revision,
    needs_upgrade,
    upgrade_to_head,
)
from pyworkflow.storage.sqlite._batch import run_batch as _run_batch
from pyworkflow.storage.sqlite._batch import translate as _translate
from pyworkflow.storage.sqlite._fires import FireOneByOne, fire_all_won
from pyworkflow.storage.sqlite._presence import LockFiles
from pyworkflow.storage.sqlite._session import SessionCache, SqliteSession, run_to_end
from pyworkflow.storage.sqlite._thread import DatabaseThread
from pyworkflow.storage.sqlite._thread import Job as _Job

__all__ = ["SQLiteStorage"]

_T = TypeVar("_T")

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


def _sqlite(db: Session) -> SqliteSession:
    assert isinstance(db, SqliteSession)  # every script here runs on the database thread's
    return db


def _parse_path(path_or_url: str) -> str:
    if path_or_url.startswith(("sqlite://", "sqlite+pysqlite://")):
        rest = path_or_url.split("://", 1)[1]
        if not rest.startswith("/"):
            raise ConfigurationError(
                f"{path_or_url!r} is not a SQLite URL; use 'sqlite:///relative/path.db' or "
                "'sqlite:////absolute/path.db'"
            )
        path = rest[1:].split("?", 1)[0]
    else:
        path = path_or_url
    if not path:
        raise ConfigurationError(f"{path_or_url!r} names no database file")
    return path


class SQLiteStorage(SqlStorage):
    """Storage in one SQLite file, for one machine: WAL, one database thread, group commit.

    Several processes on the same machine may share the file (workers, the CLI): writers are
    serialised by SQLite's lock and every append is checked against the run's seq and lease.

    Args:
        path_or_url: ``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or a plain path.
        synchronous: SQLite's ``synchronous`` pragma: ``"FULL"`` (default; a commit survives a
            power cut) or ``"NORMAL"`` (faster; in WAL a power cut may lose the last commits but
            never corrupts the file).
        busy_timeout: seconds to wait for another process's write lock before failing.
        create: create the file, its directories and the schema when missing.
        auto_upgrade: migrate an older schema on open; when False, an older schema raises
            SchemaVersionError naming ``pyworkflow db upgrade``.

    Example:
        >>> storage = SQLiteStorage("sqlite:///pyworkflow.db")  # doctest: +SKIP
        >>> await storage.open()  # doctest: +SKIP
    """

    url: str
    """``sqlite:///`` and the path as given."""

    def __init__(
        self,
        path_or_url: str,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 30.0,
        create: bool = True,
        auto_upgrade: bool = True,
    ) -> None:
        self.path = _parse_path(os.fspath(path_or_url))
        self.url = f"sqlite:///{self.path}"
        self._owner_files = LockFiles(self.path)
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ConfigurationError(
                f"synchronous={synchronous!r} is not a SQLite synchronous mode; use 'FULL' or "
                "'NORMAL'"
            )
        if not busy_timeout >= 0:
            raise ConfigurationError(f"busy_timeout={busy_timeout!r} must be seconds >= 0")
        self.synchronous = synchronous.upper()
        self.busy_timeout = float(busy_timeout)
        self.create = create
        self.auto_upgrade = auto_upgrade
        self._db: DatabaseThread | None = None
        self._sessions = SessionCache()
        self._ready: concurrent.futures.Future[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLiteStorage({self.url!r})"

    @classmethod
    def from_url(cls, url: str) -> SQLiteStorage:
        """A SQLiteStorage for ``sqlite:///path.db``, with ``?synchronous=`` its only option.

        Raises:
            ConfigurationError: another option, or not a SQLite URL.
        """
        options = dict(parse_qsl(url.partition("?")[2], keep_blank_values=True))
        unknown = sorted(set(options) - {"synchronous"})
        if unknown:
            raise ConfigurationError(
                f"storage {masked(url)!r}: unknown option(s) {', '.join(unknown)}; "
                "SQLite accepts ?synchronous=FULL (default) or ?synchronous=NORMAL"
            )
        return cls(url, synchronous=options.get("synchronous", "FULL"))

    # --- life cycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Start the database thread, set the pragmas, create or check the schema. Idempotent.

        Raises:
            SchemaVersionError: the schema is newer than this pyworkflow, or older and
                ``auto_upgrade`` is False.
            StorageError: the file cannot be opened.
        """
        if self._closed:
            raise StorageError(f"SQLite storage {self.url} is closed")
        if self._ready is None:
            self._start()
        assert self._ready is not None
        ready = self._ready
        try:
            await asyncio.wrap_future(ready)
        except BaseException:
            if self._ready is ready:  # the first to see the failure stops the thread
                self._ready = None
                self._stop_thread()
            raise

    def _start(self) -> None:
        if self.path != ":memory:":
            if self.create:
                parent = os.path.dirname(os.path.abspath(self.path))
                os.makedirs(parent, exist_ok=True)
            elif not os.path.exists(self.path):
                raise StorageError(
                    f"{self.url}: no such database file (and create=False); check the path, "
                    f"or create it with `pyworkflow db upgrade --storage {self.url}`"
                )
        engine = sa.create_engine(
            f"sqlite+pysqlite:///{self.path}",
            poolclass=sa.pool.NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"timeout": self.busy_timeout},
        )
        # A storage dropped without close() still closes its connection: the thread's finalizer
        # fires with the storage, as nothing the thread holds refers back to it.
        self._db = DatabaseThread(
            engine,
            self.url,
            name=f"pyworkflow-sqlite:{self.path}",
            # Looked up at each batch, not bound once, so that a test can wrap ``_run_batch``.
            run_batch=lambda conn, raw, batch, url: _run_batch(conn, raw, batch, url),
            translate=_translate,
        )
        self._ready = concurrent.futures.Future()
        self._db.put(_Job(self._setup, _Job.ALONE, None, self._ready))

    def _stop_thread(self) -> None:
        if self._db is not None:
            self._db.stop()

    async def close(self) -> None:
        """Finish the queued jobs, close the connection and stop the thread. Idempotent."""
        self._closed = True
        self._ready = None
        if self._db is not None and self._db.running:
            await asyncio.to_thread(self._stop_thread)

    def _setup(self, conn: sa.Connection) -> None:
        """Pragmas, then create, check or upgrade the schema (runs on the database thread)."""
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        if sqlite3.sqlite_version_info < (3, 35):
            raise StorageError(
                f"SQLite {sqlite3.sqlite_version} is too old; pyworkflow needs 3.35 or newer "
                "(UPDATE ... RETURNING)"
            )
        raw.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        mode = raw.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal" and self.path != ":memory:":
            raise StorageError(f"{self.url}: cannot switch to WAL (journal_mode is {mode})")
        raw.execute(f"PRAGMA synchronous = {self.synchronous}")
        # The common case, an up-to-date database, reads the version without the write lock.
        if current_revision(conn, self.url) == HEAD_REVISION:
            return
        # Re-read under the write lock: another process may be migrating. Issued through
        # SQLAlchemy so that it sees a transaction and Alembic runs inside ours, not its own.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            revision = current_revision(conn, self.url)
            if needs_upgrade(
                revision, url=self.url, create=self.create, auto_upgrade=self.auto_upgrade
            ):
                upgrade_to_head(conn)
            raw.execute("COMMIT")
        except BaseException:
            raw.execute("ROLLBACK")
            raise

    @property
    def _presences(self) -> LockFiles:
        return self._owner_files

    # --- schedules ---------------------------------------------------------------------------

    async def fire_schedules(self, fires: Sequence[ScheduleFire]) -> list[list[str] | None]:
        """A tick's fires in one script of three ``executemany`` (``_fires``).

        Should one of them lose its version check or find a slot's run, that script writes
        nothing and the fires go one by one through the shared script instead.
        """
        if not fires:
            return []
        try:
            return await self._run(lambda db: fire_all_won(_sqlite(db), fires), writes=True)
        except FireOneByOne:
            return await super().fire_schedules(fires)

    # --- the bridge to the database thread -----------------------------------------------------

    async def _call(self, fn: Callable[[sa.Connection], _T], kind: int) -> _T:
        if self._ready is None or not self._ready.done():
            await self.open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        assert self._db is not None  # set by open(), never unset
        self._db.put(_Job(fn, kind, loop, future))
        return await future

    async def _run(self, script: Script[_T], *, writes: bool) -> _T:
        """Run ``script`` on the database thread, in the batch's transaction when it writes.

        ``_call`` written out: this is every storage call's path (B2 makes ~4 per step).
        """
        if self._ready is None or not self._ready.done():
            await self.open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        assert self._db is not None  # set by open(), never unset
        sessions = self._sessions
        self._db.put(
            _Job(
                lambda conn: run_to_end(script(sessions.of(conn))),
                _Job.WRITE if writes else _Job.READ,
                loop,
                future,
            )
        )
        return await future
