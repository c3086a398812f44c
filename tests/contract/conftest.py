"""The storages under test: every test asking for ``storage`` runs once per backend.

The backends are the one list of tests/backends.py (every backend of the scheme table).

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

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backends import BACKENDS, StorageFactory, fresh_storages, shared_url
from pyworkflow.storage import MemoryStorage, storage_from_url
from pyworkflow.storage._backends import backend_named
from pyworkflow.storage.protocol import ChangeNotifier, Storage

NOTIFYING = [
    backend
    for backend in BACKENDS
    if issubclass(backend_named(backend).storage_class(), ChangeNotifier)
]
"""Backends whose storage pushes changes (``ChangeNotifier``)."""


@pytest.fixture(params=BACKENDS)
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> StorageFactory:
    return fresh_storages(request.param, tmp_path, request)


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
        url = shared_url(request.param, tmp_path, request)
        storages = [storage_from_url(url) for _ in range(5)]
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
    url = shared_url(request.param, tmp_path, request)
    listener, writer = storage_from_url(url), storage_from_url(url)
    assert isinstance(listener, ChangeNotifier)
    await listener.open()
    await writer.open()
    try:
        yield listener, writer
    finally:
        await writer.close()
        await listener.close()
