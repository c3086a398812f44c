"""Schema migrations: bring a database to the schema of this pyworkflow, through Alembic.

The Alembic environment ships inside the package (``storage/migrations/``) and is configured
here in code, so no ``alembic.ini`` is needed. Opening a database only reads its revision
(:func:`current_revision`) and compares it with :data:`HEAD_REVISION` and :data:`REVISIONS`
(:func:`needs_upgrade`), without importing Alembic; Alembic is imported only when a database
must be created or upgraded.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy

from pyworkflow.exceptions import SchemaVersionError, StorageError
from pyworkflow.storage.sql.schema import VERSION_TABLE

__all__ = [
    "HEAD_REVISION",
    "MIGRATIONS_DIR",
    "REVISIONS",
    "current_revision",
    "needs_upgrade",
    "upgrade_to_head",
]

REVISIONS: tuple[str, ...] = (
    "0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010",
    "0011", "0012",
)  # fmt: skip
"""Every revision this version knows, oldest first (a test checks them against the scripts)."""

HEAD_REVISION = REVISIONS[-1]
"""The revision ``schema.py`` describes."""

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
"""Alembic's script location, inside the installed package."""


def upgrade_to_head(connection: sqlalchemy.Connection) -> None:
    """Run every pending migration on ``connection``, up to :data:`HEAD_REVISION`.

    When the connection is inside a transaction, the migrations run in it and the caller
    commits (SQLite and PostgreSQL both have transactional DDL); otherwise Alembic begins and
    commits its own.

    Args:
        connection: an open SQLAlchemy connection to the database to upgrade.

    Example:
        >>> with engine.begin() as conn:  # doctest: +SKIP
        ...     upgrade_to_head(conn)
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    # Alembic's options go through configparser interpolation: escape '%' in the path.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def current_revision(connection: sqlalchemy.Connection, url: str) -> str | None:
    """The database's schema revision, or None for a database without pyworkflow's tables.

    Cheap (no Alembic import): one look at the catalogue and one SELECT.

    Raises:
        SchemaVersionError: pyworkflow's tables without a version, or several versions.
    """
    dialect = connection.dialect
    if not dialect.has_table(connection, VERSION_TABLE.name):
        found = [name for name in ("runs", "events") if dialect.has_table(connection, name)]
        if found:
            raise SchemaVersionError(
                f"{url} has tables {', '.join(found)} but no schema version; it was not "
                "created by pyworkflow"
            )
        return None
    versions = list(connection.execute(sqlalchemy.select(VERSION_TABLE.c.version_num)).scalars())
    if len(versions) != 1:
        raise SchemaVersionError(f"{url} has schema versions {versions!r}; expected one")
    return str(versions[0])


def needs_upgrade(revision: str | None, *, url: str, create: bool, auto_upgrade: bool) -> bool:
    """Whether a database at ``revision`` must be migrated before use.

    Args:
        revision: from :func:`current_revision`.
        url: the database, for messages.
        create: a database without schema may be created.
        auto_upgrade: an older schema may be migrated; otherwise the user runs the command.

    Raises:
        SchemaVersionError: the schema is newer than this pyworkflow, or older and
            ``auto_upgrade`` is False.
        StorageError: no schema and ``create`` is False.
    """
    if revision == HEAD_REVISION:
        return False
    if revision is None:
        if not create:
            raise StorageError(
                f"{url} has no pyworkflow schema (and create=False); create it with "
                f"`pyworkflow db upgrade --storage {url}`"
            )
    elif revision not in REVISIONS:
        raise SchemaVersionError(
            f"{url} has schema revision {revision!r}, written by a newer pyworkflow than this "
            f"one (which knows up to {HEAD_REVISION!r}); upgrade pyworkflow"
        )
    elif not auto_upgrade:
        raise SchemaVersionError(
            f"{url} has schema revision {revision!r}, older than {HEAD_REVISION!r} that this "
            f"pyworkflow needs; run `pyworkflow db upgrade --storage {url}`"
        )
    return True
