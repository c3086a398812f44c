"""The storages under test: every test asking for ``storage`` runs once per backend.

``make_storage`` is the one parametrisation: it yields a factory of fresh, unopened storages
(each SQLite one in a file of its own, each PostgreSQL one in a schema of its own), so that sync
tests (the hypothesis state machine) can build and open storages on their own event loop.
``storage`` is one opened storage built by it.

``sharing`` is five opened storage objects on one database, as five processes would have, for
the races between them (one object five times over for memory, which cannot share).

``notifier_pair`` is for the optional ``ChangeNotifier`` protocol: two opened storage objects on
one database, for each backend whose storage class implements it (the first listens, the second
writes, as two processes would). The list is computed from the classes, so a backend that gains
``subscribe`` is tested at once, and ``test_which_backends_push_changes`` pins it.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pyworkflow.storage.memory import MemoryStorage
from pyworkflow.storage.postgres import PostgresStorage
from pyworkflow.storage.protocol import ChangeNotifier, Storage
from pyworkflow.storage.sqlite import SQLiteStorage

BACKENDS = ["memory", "sqlite", "postgres"]

CLASSES: dict[str, type[Storage]] = {
    "memory": MemoryStorage,
    "sqlite": SQLiteStorage,
    "postgres": PostgresStorage,
}

NOTIFYING = [backend for backend in BACKENDS if issubclass(CLASSES[backend], ChangeNotifier)]
"""Backends whose storage pushes changes (``ChangeNotifier``)."""

StorageFactory = Callable[[], Storage]


def _factory(backend: str, directory: Path, request: pytest.FixtureRequest) -> StorageFactory:
    """Fresh storages, each on a database of its own."""
    if backend == "memory":
        return MemoryStorage
    if backend == "sqlite":
        numbers = itertools.count(1)
        return lambda: SQLiteStorage(str(directory / f"wf-{next(numbers)}.db"))
    if backend == "postgres":
        server = request.getfixturevalue("postgres_server")
        return lambda: PostgresStorage(server.fresh_url())
    raise AssertionError(f"unknown backend {backend!r}")


def _one_database(backend: str, directory: Path, request: pytest.FixtureRequest) -> StorageFactory:
    """Storages that all open the same (fresh) database, as separate processes would."""
    if backend == "sqlite":
        path = str(directory / "shared.db")
        return lambda: SQLiteStorage(path)
    if backend == "postgres":
        url = request.getfixturevalue("postgres_server").fresh_url()
        return lambda: PostgresStorage(url)
    raise AssertionError(f"{backend!r} cannot share a database between storage objects")


@pytest.fixture(params=BACKENDS)
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> StorageFactory:
    return _factory(request.param, tmp_path, request)


@pytest.fixture
async def storage(make_storage: StorageFactory) -> AsyncIterator[Storage]:
    store = make_storage()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=BACKENDS)
async def sharing(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[Storage]]:
    """Five opened storages on one database, as five processes would have.

    A memory database cannot be shared between objects: there, the five are one object.
    """
    storages: list[Storage]
    if request.param == "memory":
        storages = [MemoryStorage()] * 5
    else:
        make = _one_database(request.param, tmp_path, request)
        storages = [make() for _ in range(5)]
    for store in storages:
        await store.open()
    try:
        yield storages
    finally:
        for store in storages:
            await store.close()


@pytest.fixture(params=NOTIFYING)
async def notifier_pair(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[ChangeNotifier, Storage]]:
    """``(listener, writer)``: two opened storages on one database; the listener notifies."""
    make = _one_database(request.param, tmp_path, request)
    listener, writer = make(), make()
    assert isinstance(listener, ChangeNotifier)
    await listener.open()
    await writer.open()
    try:
        yield listener, writer
    finally:
        await writer.close()
        await listener.close()
