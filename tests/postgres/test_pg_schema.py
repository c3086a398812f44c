"""Schema management on PostgreSQL: creation, versions, and migrations that equal schema.py.

Mirrors tests/storage/test_migrations.py and the schema-version tests of test_sqlite.py for
PostgreSQL: each test works in a fresh schema of the session's database (``?schema=``), or in a
database of its own where the test is about databases, dropped at the end.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from postgres_server import PostgresServer
from pyworkflow.events import EventType, HookStatus
from pyworkflow.exceptions import SchemaVersionError, StorageError
from pyworkflow.storage.postgres import PostgresStorage
from pyworkflow.storage.records import AppendWrite, NewEvent, NewHook, NewRun
from pyworkflow.storage.sql import migrate
from pyworkflow.storage.sql.schema import metadata
from workers import cli, subprocess_env

T = TypeVar("T")


@pytest.fixture
async def admin(postgres_server: PostgresServer) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the session's database, outside any storage."""
    conn = await asyncpg.connect(postgres_server.url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def own_database(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """The name of a database that does not exist yet; dropped at the end if a test made it."""
    name = f"{postgres_server.database}_own"
    conn = await asyncpg.connect(postgres_server.admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        yield name
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def database_exists(postgres_server: PostgresServer, name: str) -> bool:
    conn = await asyncpg.connect(postgres_server.admin_url)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


def database_url(postgres_server: PostgresServer, name: str, query: str = "") -> str:
    base, _, _ = postgres_server.url.rpartition("/")
    return f"{base}/{name}{query}"


async def opened(url: str, **options: Any) -> PostgresStorage:
    storage = PostgresStorage(url, **options)
    await storage.open()
    return storage


# --- creating a database and a schema ------------------------------------------------------------


async def test_a_missing_database_is_created_once_by_storages_opening_it_at_once(
    postgres_server: PostgresServer, own_database: str
) -> None:
    # Several workers started together on a database nobody created yet: each must open.
    # (One test for both: CREATE and DROP DATABASE cost seconds on the shared server.)
    url = database_url(postgres_server, own_database)
    storages = [PostgresStorage(url) for _ in range(4)]
    try:
        await asyncio.gather(*(storage.open() for storage in storages))
        assert await database_exists(postgres_server, own_database)
        for i, storage in enumerate(storages):
            _, created = await storage.create_run(NewRun(f"r{i}", "wf", [], {}, now=1.0))
            assert created
        assert len(await storages[0].list_runs()) == 4
    finally:
        for storage in storages:
            await storage.close()


async def test_create_false_refuses_a_missing_database_and_names_the_command(
    postgres_server: PostgresServer, own_database: str
) -> None:
    url = database_url(postgres_server, own_database, "?create=false")
    storage = PostgresStorage(url)
    with pytest.raises(StorageError) as info:
        await storage.open()
    assert "pyworkflow db upgrade" in str(info.value)
    assert repr(own_database) in str(info.value)
    assert not await database_exists(postgres_server, own_database)
    await storage.close()


async def test_create_false_refuses_a_missing_schema_and_names_the_command(
    postgres_server: PostgresServer,
) -> None:
    storage = PostgresStorage(postgres_server.fresh_url(create="false"))
    with pytest.raises(StorageError) as info:
        await storage.open()
    await storage.close()
    assert "pyworkflow db upgrade" in str(info.value)


@pytest.mark.slow  # the CLI in a process of its own
async def test_db_upgrade_creates_the_schema_that_create_false_refused(
    postgres_server: PostgresServer, admin: asyncpg.Connection
) -> None:
    url = postgres_server.fresh_url(create="false")
    storage = PostgresStorage(url)
    with pytest.raises(StorageError, match="create=False"):
        await storage.open()
    await storage.close()
    schema = storage.settings.schema
    tables = "SELECT count(*) FROM pg_tables WHERE schemaname = $1"
    assert await admin.fetchval(tables, schema) == 0

    upgrade = await asyncio.to_thread(
        subprocess.run,
        cli("db", "upgrade", "--storage", url),
        env=subprocess_env(Path.cwd()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    assert f"revision {migrate.HEAD_REVISION}" in upgrade.stdout
    assert "secret" not in upgrade.stdout
    # Every table of schema.py, and alembic_version.
    assert await admin.fetchval(tables, schema) == len(metadata.tables) + 1
    storage = await opened(url)  # still create=false: it opens now
    assert await storage.get_run("r1") is None
    await storage.close()


async def test_storages_opening_a_fresh_schema_at_once_create_it_once(
    postgres_server: PostgresServer, admin: asyncpg.Connection
) -> None:
    # Several workers started together on a new schema: each must open. Three rounds: before
    # the fix, a round of six hit the race 8 times in 10.
    for _ in range(3):
        url = postgres_server.fresh_url()
        storages = [PostgresStorage(url) for _ in range(6)]
        try:
            await asyncio.gather(*(storage.open() for storage in storages))
            schema = storages[0].settings.schema
            versions = await admin.fetch(f'SELECT version_num FROM "{schema}".alembic_version')
            assert [row["version_num"] for row in versions] == [migrate.HEAD_REVISION]
        finally:
            for storage in storages:
                await storage.close()


# --- schema versions -----------------------------------------------------------------------------


async def made_schema(postgres_server: PostgresServer, **options: str) -> tuple[str, str]:
    """A fresh schema created by a storage: its URL and its name."""
    url = postgres_server.fresh_url(**options)
    storage = await opened(url)
    await storage.close()
    assert storage.settings.schema is not None
    return url, storage.settings.schema


async def test_an_older_schema_without_auto_upgrade_names_the_command(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = await made_schema(postgres_server)
    # Pretend this pyworkflow knows a newer revision than the one the schema has.
    monkeypatch.setattr(migrate, "REVISIONS", (*migrate.REVISIONS, "9000"))
    monkeypatch.setattr(migrate, "HEAD_REVISION", "9000")
    storage = PostgresStorage(url, auto_upgrade=False)
    with pytest.raises(SchemaVersionError) as info:
        await storage.open()
    assert f"pyworkflow db upgrade --storage {storage.url}" in str(info.value)
    assert "?schema=" in storage.url  # the command the user copies names the same schema
    assert "older" in str(info.value)
    await storage.close()


async def test_a_newer_schema_is_refused(
    postgres_server: PostgresServer, admin: asyncpg.Connection
) -> None:
    url, schema = await made_schema(postgres_server)
    await admin.execute(f"UPDATE \"{schema}\".alembic_version SET version_num = '9999_future'")
    for auto_upgrade in (True, False):
        storage = PostgresStorage(url, auto_upgrade=auto_upgrade)
        with pytest.raises(SchemaVersionError, match="newer pyworkflow") as info:
            await storage.open()
        assert "'9999_future'" in str(info.value)
        await storage.close()


async def test_tables_without_a_version_are_refused(
    postgres_server: PostgresServer, admin: asyncpg.Connection
) -> None:
    url = postgres_server.fresh_url()
    schema = PostgresStorage(url).settings.schema
    await admin.execute(f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".runs (id int)')
    with pytest.raises(SchemaVersionError, match="no schema version"):
        await PostgresStorage(url).open()
    assert await admin.fetchval(f'SELECT count(*) FROM "{schema}".runs') == 0


async def test_reopening_an_up_to_date_schema_keeps_its_data(
    postgres_server: PostgresServer,
) -> None:
    url, _ = await made_schema(postgres_server)
    first = await opened(url)
    await first.create_run(NewRun("r1", "wf", [], {}, now=1.0))
    await first.close()
    second = await opened(url, create=False, auto_upgrade=False)
    assert (await second.get_run("r1")) is not None
    await second.close()


# --- the migrations build exactly schema.py ------------------------------------------------------


async def on_schema(
    postgres_server: PostgresServer, schema: str, use: Callable[[sa.Connection], T]
) -> T:
    """``use(connection)`` on a sync SQLAlchemy connection whose search_path is ``schema``."""

    async def connect() -> Any:
        return await asyncpg.connect(postgres_server.url, server_settings={"search_path": schema})

    engine = create_async_engine(
        "postgresql+asyncpg://", async_creator=connect, poolclass=sa.NullPool
    )
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(use)
    finally:
        await engine.dispose()


@pytest.fixture
async def migrated(postgres_server: PostgresServer) -> str:
    """A schema built by the storage (through the Alembic migrations): its name."""
    _, schema = await made_schema(postgres_server)
    return schema


async def test_the_migrations_build_exactly_schema_py(
    postgres_server: PostgresServer, migrated: str
) -> None:
    def differences(conn: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    assert await on_schema(postgres_server, migrated, differences) == []


async def test_the_migrations_build_the_same_indexes_and_constraints(
    postgres_server: PostgresServer, migrated: str
) -> None:
    def check(conn: sa.Connection) -> None:
        inspector = sa.inspect(conn)
        assert inspector.default_schema_name == migrated
        for table in metadata.sorted_tables:
            built = {
                ix["name"]: ix["column_names"]
                for ix in inspector.get_indexes(table.name)
                if "duplicates_constraint" not in ix  # a UNIQUE constraint's own index
            }
            declared = {ix.name: [c.name for c in ix.columns] for ix in table.indexes}
            assert built == declared, table.name
            primary_key = inspector.get_pk_constraint(table.name)
            assert primary_key["constrained_columns"] == [c.name for c in table.primary_key]
        uniques = {
            table: [(u["name"], u["column_names"]) for u in inspector.get_unique_constraints(table)]
            for table in ("runs", "hooks")
        }
        assert uniques == {
            "runs": [("uq_runs_idempotency_key", ["idempotency_key"])],
            "hooks": [("uq_hooks_run_id_hook_id", ["run_id", "hook_id"])],
        }
        assert migrate.current_revision(conn, "test") == migrate.HEAD_REVISION

    await on_schema(postgres_server, migrated, check)


async def test_upgrading_an_up_to_date_schema_changes_nothing(
    postgres_server: PostgresServer, migrated: str
) -> None:
    def upgrade_and_compare(conn: sa.Connection) -> list[Any]:
        with conn.begin():
            migrate.upgrade_to_head(conn)
        context = MigrationContext.configure(conn)
        assert context.get_current_revision() == migrate.HEAD_REVISION
        return list(compare_metadata(context, metadata))

    assert await on_schema(postgres_server, migrated, upgrade_and_compare) == []


@pytest.mark.slow  # the CLI in a process of its own
async def test_db_upgrade_brings_a_revision_0001_schema_to_head(
    postgres_server: PostgresServer, admin: asyncpg.Connection
) -> None:
    url = postgres_server.fresh_url()
    schema = PostgresStorage(url).settings.schema
    await admin.execute(f'CREATE SCHEMA "{schema}"')

    def build_0001(conn: sa.Connection) -> None:
        with conn.begin():
            config = Config()
            config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")

    await on_schema(postgres_server, schema, build_0001)
    # A live run of that older pyworkflow, in the columns it knew.
    await admin.execute(
        f'INSERT INTO "{schema}".runs (run_id, workflow_name, status, args, created_at, '
        "updated_at, wake_at, last_seq) VALUES ('old-1', 'wf', 'pending', '[1]', 1, 1, 1, 1)"
    )
    await admin.execute(
        f"INSERT INTO \"{schema}\".events VALUES ('old-1', 1, 'workflow_started', '{{}}', 1)"
    )

    upgrade = await asyncio.to_thread(
        subprocess.run,
        cli("db", "upgrade", "--storage", url),
        env=subprocess_env(Path.cwd()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert upgrade.returncode == 0, upgrade.stderr

    def differences(conn: sa.Connection) -> list[Any]:
        assert migrate.current_revision(conn, "test") == migrate.HEAD_REVISION
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    assert await on_schema(postgres_server, schema, differences) == []
    storage = await opened(url, create=False, auto_upgrade=False)
    try:
        old = await storage.get_run("old-1")
        assert old is not None
        assert (old.args, old.parent_close_policy, old.continued_to) == ([1], None, None)
        await storage.claim_runs(owner="w1", now=1.0, lease_expires_at=60.0, limit=1)
        hook = NewHook(token_hash="ab" * 32, hook_id="hook:approval#1", name="approval")
        await storage.append(
            AppendWrite(
                run_id="old-1",
                owner="w1",
                expected_seq=1,
                events=[NewEvent(EventType.HOOK_CREATED, {"v": 1})],
                now=2.0,
                hooks=[hook],
                new_runs=[NewRun("child-1", "wf", [], {}, now=2.0, parent_run_id="old-1")],
            )
        )
        children = await storage.list_runs(parent_run_id="old-1")
        assert [child.run_id for child in children] == ["child-1"]
        stored = await storage.get_hook("ab" * 32)
        assert stored is not None
        assert stored.status is HookStatus.WAITING
    finally:
        await storage.close()
