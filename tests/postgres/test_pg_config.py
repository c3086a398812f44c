"""What a user gets wrong about a PostgreSQL storage, and the settings a URL carries.

Bad input is an error that names it before anything connects: a scheme that is not PostgreSQL's,
an option that cannot be used. A server that cannot be reached is StorageUnavailableError naming
the URL (password masked) and what to check. ``pool_size`` and ``statement_timeout`` are seen
at work on the server: how many connections wait, which statement the server cancels.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from postgres_server import PostgresServer
from pyworkflow.exceptions import (
    ConcurrencyConflictError,
    ConfigurationError,
    StorageError,
    StorageUnavailableError,
)
from pyworkflow.storage import storage_from_url
from pyworkflow.storage.postgres import PostgresStorage
from pyworkflow.storage.records import AppendWrite, NewRun

CLOSED = "postgresql://u:secret@127.0.0.1:1/x"
"""Nothing listens on port 1; the password must never show."""


async def test_an_unreachable_server_names_the_url_masked_and_what_to_check() -> None:
    storage = PostgresStorage(CLOSED)
    assert storage.url == "postgresql://u:***@127.0.0.1:1/x"
    assert "secret" not in repr(storage)
    with pytest.raises(StorageUnavailableError) as info:
        await storage.open()
    message = str(info.value)
    assert "secret" not in message
    assert info.value.url == "postgresql://u:***@127.0.0.1:1/x"
    assert "postgresql://u:***@127.0.0.1:1/x" in message
    assert "Check that PostgreSQL is running and accepts connections at 127.0.0.1:1" in message
    assert "database 'x'" in message
    assert isinstance(info.value.__cause__, OSError)
    await storage.close()


async def test_a_first_call_on_an_unreachable_server_raises_the_same() -> None:
    storage = storage_from_url(CLOSED.replace("postgresql://", "postgresql+asyncpg://"))
    with pytest.raises(StorageUnavailableError, match=r"u:\*\*\*@127\.0\.0\.1:1") as info:
        await storage.get_run("r1")  # opens on first use
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    ["mysql://u:secret@db/app", "postgresql+psycopg2://u:secret@db/app", "db.example.com/app"],
)
def test_a_url_that_is_not_a_storage_names_the_accepted_schemes(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        storage_from_url(url)
    message = str(info.value)
    assert "secret" not in message
    for scheme in ("memory://", "sqlite:///", "postgresql://"):
        assert scheme in message


def test_postgres_storage_refuses_another_scheme_and_names_its_own() -> None:
    with pytest.raises(ConfigurationError) as info:
        PostgresStorage("mysql://u:secret@db/app")
    message = str(info.value)
    assert "secret" not in message
    assert "mysql://u:***@db/app" in message
    for scheme in ("'postgresql://'", "'postgresql+asyncpg://'", "'postgres://'"):
        assert scheme in message


@pytest.mark.parametrize(
    ("option", "shown"),
    [
        ("pool_size=x", "pool_size"),
        ("pool_size=0", "pool_size=0"),
        ("pool_size=-2", "pool_size"),
        ("statement_timeout=5 parsecs", "'5 parsecs'"),
        ("statement_timeout=5%20parsecs", "'5 parsecs'"),
        ("statement_timeout=-1s", "statement_timeout"),
        ("create=maybe", "'maybe'"),
        ("auto_upgrade=2", "'2'"),
    ],
)
def test_options_that_cannot_be_used_are_configuration_errors(option: str, shown: str) -> None:
    # Raised while building the storage: nothing is connected to (the host does not exist).
    url = f"postgresql://u:secret@no-such-host.invalid/app?{option}"
    for build in (PostgresStorage, storage_from_url):
        with pytest.raises(ConfigurationError) as info:
            build(url)
        assert shown in str(info.value)
        assert "secret" not in str(info.value)


def test_url_options_and_arguments() -> None:
    storage = PostgresStorage(
        "postgres://u:pw@db:6543/app?pool_size=3&statement_timeout=1m30s&create=false"
        "&auto_upgrade=no&schema=tenant_1&sslmode=disable"
    )
    settings = storage.settings
    assert (settings.pool_size, settings.statement_timeout) == (3, 90.0)
    assert (storage.create, storage.auto_upgrade, settings.schema) == (False, False, "tenant_1")
    assert settings.server_settings["statement_timeout"] == "90000"
    assert "sslmode=disable" in settings.dsn  # other options go to asyncpg
    assert "pool_size" not in settings.dsn
    assert storage.url.startswith("postgres://u:***@db:6543/app?")
    # Arguments win over the URL's options.
    storage = PostgresStorage("postgresql://db/app?pool_size=3", pool_size=7, create=False)
    assert (storage.settings.pool_size, storage.create) == (7, False)


# --- settings at work on the server --------------------------------------------------------------


@pytest.fixture
async def admin(postgres_server: PostgresServer) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the session's database, outside any storage."""
    conn = await asyncpg.connect(postgres_server.url)
    try:
        yield conn
    finally:
        await conn.close()


async def leased_runs(storage: PostgresStorage, run_ids: list[str]) -> None:
    for run_id in run_ids:
        await storage.create_run(
            NewRun(run_id, "wf", [], {}, now=1.0, lease_owner="w", lease_expires_at=9e9)
        )


def step(run_id: str) -> AppendWrite:
    return AppendWrite(run_id, "w", 1, [], now=2.0, lease_expires_at=9e9)


async def test_statement_timeout_cancels_a_statement_and_surfaces_as_storage_error(
    postgres_server: PostgresServer, admin: asyncpg.Connection
) -> None:
    storage = PostgresStorage(postgres_server.fresh_url(statement_timeout="300ms"))
    await leased_runs(storage, ["r1"])
    schema = storage.settings.schema
    async with admin.transaction():  # hold the run's row: the append must wait for it
        await admin.execute(f'SELECT 1 FROM "{schema}".runs WHERE run_id = $1 FOR UPDATE', "r1")
        began = time.monotonic()
        with pytest.raises(StorageError, match="statement timeout") as info:
            await storage.append(step("r1"))
        waited = time.monotonic() - began
    assert not isinstance(info.value, ConcurrencyConflictError)
    assert isinstance(info.value.__cause__, asyncpg.QueryCanceledError)
    assert storage.url in str(info.value)
    assert 0.25 < waited < 5, waited
    assert (await storage.append(step("r1"))).last_seq == 1  # the lock is gone: it goes through
    await storage.close()


async def test_pool_size_caps_the_connections_a_storage_uses(
    postgres_server: PostgresServer, admin: asyncpg.Connection
) -> None:
    storage = PostgresStorage(postgres_server.fresh_url(pool_size="2"))
    run_ids = [f"r{i}" for i in range(6)]
    await leased_runs(storage, run_ids)
    schema = storage.settings.schema
    async with admin.transaction():  # every run's row held: each cancel waits on the server
        await admin.execute(f'SELECT 1 FROM "{schema}".runs FOR UPDATE')
        cancels = [
            asyncio.ensure_future(storage.request_cancel(r, now=2.0, reason="x")) for r in run_ids
        ]
        waiting: list[int] = []
        # Until both pooled connections wait on the lock (a loaded machine takes its time to
        # open the second), then a while longer: no third may ever join them.
        after_two = 20
        for _ in range(200):
            await asyncio.sleep(0.05)
            waiting.append(
                await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND application_name = 'pyworkflow'"
                )
            )
            if max(waiting) >= 2:
                after_two -= 1
                if after_two == 0:
                    break
    assert await asyncio.gather(*cancels) == [True] * 6
    assert max(waiting) == 2, waiting  # four calls wait for a connection, not on the server
    await storage.close()
