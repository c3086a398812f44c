"""PostgreSQL settings and schema: the URL's options, and creating or migrating the database.

Opening a PostgreSQL storage first makes sure the schema is this pyworkflow's, under an
advisory lock so that workers starting together do not migrate twice: a missing database is
created (``create``), a database without tables gets the whole schema through the Alembic
migrations, an older one is migrated (``auto_upgrade``) and a newer one is refused. Alembic
needs a synchronous connection, so this step alone goes through SQLAlchemy's async engine
(``run_sync``) over asyncpg; the storage's own statements never do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import (
    ConfigurationError,
    InvalidDurationError,
    StorageError,
    StorageUnavailableError,
)
from pyworkflow.storage._backends import backend_named
from pyworkflow.storage.postgres._one_trip import NOTIFY_CHANNEL
from pyworkflow.storage.sql.migrate import current_revision, needs_upgrade, upgrade_to_head

__all__ = ["PgSettings", "ensure_schema", "parse_url"]

SCHEMES = backend_named("postgres").schemes
"""URL schemes that name a PostgreSQL storage (the scheme table's)."""

# pg_advisory_xact_lock key held while the schema is checked or migrated ("pyworkfl" in hex).
_SCHEMA_LOCK = 0x7079776F726B666C

_OUR_OPTIONS = ("pool_size", "statement_timeout", "create", "auto_upgrade", "schema")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass
class PgSettings:
    """How to reach the database and what to do when opening it."""

    dsn: str
    masked_url: str
    database: str
    host: str
    pool_size: int = 10
    statement_timeout: float | None = None
    create: bool = True
    auto_upgrade: bool = True
    schema: str | None = None
    connect_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel: one per schema, so two storages do not wake each other."""
        return NOTIFY_CHANNEL if self.schema is None else f"{NOTIFY_CHANNEL}.{self.schema}"

    @property
    def server_settings(self) -> dict[str, str]:
        """Session settings sent at connect."""
        settings = {"application_name": "pyworkflow"}
        if self.schema is not None:
            settings["search_path"] = _quoted(self.schema)
        if self.statement_timeout is not None:
            settings["statement_timeout"] = str(round(self.statement_timeout * 1000))
        return settings

    def unreachable(self, exc: BaseException) -> StorageUnavailableError:
        """The error for a server that cannot be reached, saying what to check."""
        return StorageUnavailableError(
            self.masked_url,
            f"{type(exc).__name__}: {exc}. Check that PostgreSQL is running and accepts "
            f"connections at {self.host}, and that the user and password may connect to "
            f"database {self.database!r}",
        )


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _flag(url: str, name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigurationError(f"storage {url!r}: {name}={value!r} is not true or false")


def parse_url(
    url: str,
    *,
    pool_size: int | None = None,
    statement_timeout: float | None = None,
    create: bool | None = None,
    auto_upgrade: bool | None = None,
    schema: str | None = None,
) -> PgSettings:
    """Read a PostgreSQL URL and its options; arguments given here win over the URL's.

    Raises:
        ConfigurationError: not a PostgreSQL URL, or an option that cannot be used.
    """
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"{url!r} is not a PostgreSQL URL: {exc}") from exc
    masked = parsed.render_as_string(hide_password=True)
    if parsed.drivername not in SCHEMES:
        accepted = ", ".join(f"'{s}://'" for s in SCHEMES)
        raise ConfigurationError(f"storage {masked!r}: a PostgreSQL URL starts with {accepted}")
    options = {k: v for k, v in parsed.query.items() if k in _OUR_OPTIONS}
    text = {k: v if isinstance(v, str) else v[-1] for k, v in options.items()}
    if pool_size is None and "pool_size" in text:
        if not text["pool_size"].isdigit():
            raise ConfigurationError(f"storage {masked!r}: pool_size must be a whole number")
        pool_size = int(text["pool_size"])
    if statement_timeout is None and "statement_timeout" in text:
        try:
            statement_timeout = parse_duration(text["statement_timeout"])
        except InvalidDurationError as exc:
            raise ConfigurationError(f"storage {masked!r}: statement_timeout: {exc}") from exc
    if create is None and "create" in text:
        create = _flag(masked, "create", text["create"])
    if auto_upgrade is None and "auto_upgrade" in text:
        auto_upgrade = _flag(masked, "auto_upgrade", text["auto_upgrade"])
    if schema is None:
        schema = text.get("schema") or None
    if pool_size is not None and pool_size < 1:
        raise ConfigurationError(f"storage {masked!r}: pool_size={pool_size!r} must be >= 1")
    if statement_timeout is not None and not statement_timeout > 0:
        raise ConfigurationError(f"storage {masked!r}: statement_timeout must be positive")
    plain = parsed.set(drivername="postgresql").difference_update_query(_OUR_OPTIONS)
    return PgSettings(
        dsn=plain.render_as_string(hide_password=False),
        masked_url=masked,
        database=parsed.database or parsed.username or "postgres",
        host=f"{parsed.host or 'localhost'}:{parsed.port or 5432}",
        pool_size=10 if pool_size is None else pool_size,
        statement_timeout=statement_timeout,
        create=True if create is None else create,
        auto_upgrade=True if auto_upgrade is None else auto_upgrade,
        schema=schema,
    )


async def _create_database(settings: PgSettings) -> None:
    """CREATE DATABASE, connected to the server's ``postgres`` database."""
    maintenance = dataclasses.replace(
        settings, dsn=make_url(settings.dsn).set(database="postgres").render_as_string(False)
    )
    conn = await _connect(maintenance)
    try:
        await conn.execute(f"CREATE DATABASE {_quoted(settings.database)}")
    except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
        pass  # another process created it first (the second error: at the very same moment)
    finally:
        await conn.close()


async def _connect(settings: PgSettings) -> asyncpg.Connection:
    return await asyncpg.connect(
        settings.dsn, server_settings=settings.server_settings, **settings.connect_kwargs
    )


async def ensure_schema(settings: PgSettings) -> None:
    """Create the database and schema, or check and migrate it, under an advisory lock.

    Raises:
        StorageError: the database is missing and ``create`` is False.
        SchemaVersionError: see :func:`pyworkflow.storage.migrate.needs_upgrade`.
    """
    from sqlalchemy.ext.asyncio import create_async_engine

    try:
        probe = await _connect(settings)
    except asyncpg.InvalidCatalogNameError:
        if not settings.create:
            raise StorageError(
                f"{settings.masked_url}: database {settings.database!r} does not exist (and "
                "create=false); check the URL, or create it with "
                f"`pyworkflow db upgrade --storage {settings.masked_url}`"
            ) from None
        await _create_database(settings)
        probe = await _connect(settings)
    await probe.close()

    async def connect() -> Any:
        return await _connect(settings)

    engine = create_async_engine(
        "postgresql+asyncpg://", async_creator=connect, poolclass=sa.NullPool
    )
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
            if settings.schema is not None and settings.create:
                # Under the lock: two CREATE SCHEMA IF NOT EXISTS at once can still collide.
                await conn.execute(sa.schema.CreateSchema(settings.schema, if_not_exists=True))
            await conn.run_sync(_check_or_upgrade, settings)
    finally:
        await engine.dispose()


def _check_or_upgrade(conn: sa.Connection, settings: PgSettings) -> None:
    revision = current_revision(conn, settings.masked_url)
    if needs_upgrade(
        revision,
        url=settings.masked_url,
        create=settings.create,
        auto_upgrade=settings.auto_upgrade,
    ):
        upgrade_to_head(conn)
