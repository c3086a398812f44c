"""Opening a PostgreSQL database: creating it, or checking and migrating its schema.

Opening a PostgreSQL storage first makes sure the schema is this pyworkflow's, under an
advisory lock so that workers starting together do not migrate twice: a missing database is
created (``create``), a database without tables gets the whole schema through the Alembic
migrations, an older one is migrated (``auto_upgrade``) and a newer one is refused. Alembic
needs a synchronous connection, so this step alone goes through SQLAlchemy's async engine
(``run_sync``) over asyncpg; the storage's own statements never do.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pyworkflow.exceptions import StorageError
from pyworkflow.storage.postgres._settings import PgSettings, quoted
from pyworkflow.storage.sql.migrate import current_revision, needs_upgrade, upgrade_to_head

__all__ = ["ensure_schema"]


# pg_advisory_xact_lock key held while the schema is checked or migrated ("pyworkfl" in hex).
_SCHEMA_LOCK = 0x7079776F726B666C


async def _create_database(settings: PgSettings) -> None:
    """CREATE DATABASE, connected to the server's ``postgres`` database."""
    maintenance = dataclasses.replace(
        settings, dsn=make_url(settings.dsn).set(database="postgres").render_as_string(False)
    )
    conn = await _connect(maintenance)
    try:
        await conn.execute(f"CREATE DATABASE {quoted(settings.database)}")
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
        SchemaVersionError: see :func:`pyworkflow.storage.sql.migrate.needs_upgrade`.
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
