"""The storages the read model is tested on: memory and SQLite, opened fresh for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pyworkflow.storage import MemoryStorage, SQLiteStorage, Storage


@pytest.fixture(params=["memory", "sqlite"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """An opened, empty storage of each kind in turn."""
    store: Storage = (
        MemoryStorage() if request.param == "memory" else SQLiteStorage(str(tmp_path / "r.db"))
    )
    await store.open()
    try:
        yield store
    finally:
        await store.close()
