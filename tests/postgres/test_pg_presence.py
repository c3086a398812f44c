"""An owner's presence on PostgreSQL lost while the server runs: it is dead to the others.

The owner's advisory-lock session is ended by the server (``pg_terminate_backend``, as an
administrator or a dropped network would): the lock is gone at once, another process takes
the owner's runs over, and the owner, told through ``on_lost``, announces itself again and
learns that it must give its runs up. (A server restart, which ends every session at once,
is the other case: ``test_pg_restart.py`` checks that runs then complete once.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from postgres_server import PostgresServer
from pyworkflow.storage.postgres import PostgresStorage
from pyworkflow.storage.postgres._presence import NAMESPACE
from pyworkflow.storage.records import NewRun

T0 = 1_000.0


@pytest.fixture
async def pair(postgres_server: PostgresServer) -> AsyncIterator[list[PostgresStorage]]:
    url = postgres_server.fresh_url()
    stores = [PostgresStorage(url), PostgresStorage(url)]
    for store in stores:
        await store.open()
    yield stores
    for store in stores:
        await store.close()


async def end_presence_sessions(url: str) -> int:
    """End the sessions holding pyworkflow presence locks in this database; how many."""
    conn = await asyncpg.connect(url.split("?", 1)[0])
    try:
        pids = await conn.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int::oid "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            NAMESPACE,
        )
        for (pid,) in pids:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
        return len(pids)
    finally:
        await conn.close()


async def test_a_lost_session_makes_the_owner_dead_and_tells_it_to_give_up(
    postgres_server: PostgresServer, pair: list[PostgresStorage]
) -> None:
    mine, theirs = pair
    lost = asyncio.Event()
    assert await mine.announce_owner("a", now=T0, on_lost=lost.set) is True  # a first one
    await mine.create_run(
        NewRun("r1", "wf", [], {}, now=T0, lease_owner="a", lease_expires_at=T0 + 600)
    )
    assert await theirs.take_over_dead_owners(now=T0 + 1) == []

    assert await end_presence_sessions(postgres_server.url) == 1
    await asyncio.wait_for(lost.wait(), 10)

    assert await theirs.take_over_dead_owners(now=T0 + 2) == ["a"]
    taken = await theirs.claim_runs(owner="b", now=T0 + 2, lease_expires_at=T0 + 60, limit=5)
    assert [(r.run_id, r.previous_owner) for r in taken] == [("r1", "a")]
    # Shown again, the owner learns that it was seen dead meanwhile: it must give its runs up.
    assert await mine.announce_owner("a", now=T0 + 3, on_lost=lost.set) is False
    assert await theirs.take_over_dead_owners(now=T0 + 4) == []  # alive again
