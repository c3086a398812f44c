"""LISTEN/NOTIFY beyond the ChangeNotifier contract: lost connections, schemas, bad subscribers.

The contract suite (tests/contract/test_notifications.py) checks what a subscriber hears; these
check what PostgreSQL adds: a listener whose connection the server drops reconnects and says
``("runnable", "*")`` (notifications meanwhile were lost: look at storage), a storage in one
schema does not hear another schema's writes, and a subscriber that raises does not silence the
others.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest

from postgres_server import PostgresServer
from pyworkflow.storage.postgres import PostgresStorage
from pyworkflow.storage.records import NewRun

_markers = itertools.count(1)


class Ears:
    """A subscriber that remembers what it heard."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str]] = []
        self._news = asyncio.Event()

    def __call__(self, kind: str, run_id: str) -> None:
        self.heard.append((kind, run_id))
        self._news.set()

    async def hear(self, kind: str, run_id: str, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while (kind, run_id) not in self.heard:
                self._news.clear()
                await self._news.wait()


async def create(storage: PostgresStorage, run_id: str) -> None:
    await storage.create_run(NewRun(run_id, "wf", [], {}, now=1.0))


async def tune_in(listener: PostgresStorage, writer: PostgresStorage, *ears: Ears) -> None:
    """Subscribe and return once the listener hears the writer (listening starts lazily)."""
    for ear in ears:
        listener.subscribe(ear)
    async with asyncio.timeout(10):
        while True:
            marker = f"marker-{next(_markers)}"
            await create(writer, marker)
            try:
                await ears[0].hear("runnable", marker, within=0.2)
                return
            except TimeoutError:
                continue


@pytest.fixture
async def pair(postgres_server: PostgresServer) -> AsyncIterator[tuple[PostgresStorage, ...]]:
    """A listener and a writer on one fresh schema."""
    url = postgres_server.fresh_url()
    listener, writer = PostgresStorage(url), PostgresStorage(url)
    await listener.open()
    await writer.open()
    yield listener, writer
    await writer.close()
    await listener.close()


async def test_a_dropped_listen_connection_reconnects_and_says_look_at_storage(
    postgres_server: PostgresServer, pair: tuple[PostgresStorage, ...]
) -> None:
    listener, writer = pair
    ears = Ears()
    await tune_in(listener, writer, ears)
    channel = f"pyworkflow.{listener.settings.schema}"
    admin = await asyncpg.connect(postgres_server.url)
    try:
        terminated = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query = $1",
            f'LISTEN "{channel}"',
        )
    finally:
        await admin.close()
    assert terminated == 1
    await ears.hear("runnable", "*")
    await create(writer, "after")  # and it hears writes again
    await ears.hear("runnable", "after")


async def test_a_storage_does_not_hear_another_schema(postgres_server: PostgresServer) -> None:
    mine, other = postgres_server.fresh_url(), postgres_server.fresh_url()
    listener, writer = PostgresStorage(mine), PostgresStorage(mine)
    stranger = PostgresStorage(other)
    try:
        ears = Ears()
        await tune_in(listener, writer, ears)
        await create(stranger, "elsewhere")
        await create(writer, "last")
        await ears.hear("runnable", "last")
        assert ("runnable", "elsewhere") not in ears.heard
    finally:
        for storage in (listener, writer, stranger):
            await storage.close()


async def test_a_subscriber_that_raises_does_not_silence_the_others(
    pair: tuple[PostgresStorage, ...], caplog: pytest.LogCaptureFixture
) -> None:
    listener, writer = pair

    def broken(kind: str, run_id: str) -> None:
        raise RuntimeError("subscriber bug")

    first, last = Ears(), Ears()
    listener.subscribe(first)
    listener.subscribe(broken)
    await tune_in(listener, writer, last)
    with caplog.at_level(logging.ERROR, logger="pyworkflow.storage.postgres"):
        await create(writer, "r1")
        await first.hear("runnable", "r1")
        await last.hear("runnable", "r1")
    assert any(record.exc_info for record in caplog.records), "the failure was not logged"
