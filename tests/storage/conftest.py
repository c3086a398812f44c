"""The storages under test: every test asking for ``storage`` runs once per backend.

``make_storage`` is the one parametrisation: it yields a factory of fresh, unopened storages
(each SQLite one in a file of its own), so that sync tests (the hypothesis state machine) can
build and open storages on their own event loop. ``storage`` is one opened storage built by it.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pyworkflow.storage.protocol import Storage

BACKENDS = ["memory", "sqlite"]

StorageFactory = Callable[[], Storage]


def _factory(backend: str, directory: Path) -> StorageFactory:
    if backend == "memory":
        from pyworkflow.storage.memory import MemoryStorage

        return MemoryStorage
    if backend == "sqlite":
        from pyworkflow.storage.sqlite import SQLiteStorage

        numbers = itertools.count(1)
        return lambda: SQLiteStorage(str(directory / f"wf-{next(numbers)}.db"))
    raise AssertionError(f"unknown backend {backend!r}")


@pytest.fixture(params=BACKENDS)
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> StorageFactory:
    return _factory(request.param, tmp_path)


@pytest.fixture
async def storage(make_storage: StorageFactory) -> AsyncIterator[Storage]:
    store = make_storage()
    await store.open()
    try:
        yield store
    finally:
        await store.close()
