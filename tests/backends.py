"""The storage backends the suite runs on, and databases of their own for each test.

``BACKENDS`` is the one list that storage fixtures parametrise over (tests/contract/conftest.py,
the ``pw`` fixture of tests/conftest.py): every backend of ``pyworkflow.storage``'s scheme
table, in its order. A new backend is one more branch in ``fresh_urls`` below (how a test gets
a database of its own on it); until it has one, every test on it fails saying so.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from pyworkflow.storage import Storage, storage_from_url
from pyworkflow.storage._backends import BACKENDS as TABLE

BACKENDS = [backend.name for backend in TABLE]
"""Every backend, by name: ``["memory", "sqlite", "postgres"]``."""

SHARED = [name for name in BACKENDS if name != "memory"]
"""The backends whose database several storage objects (several processes) can share."""

StorageFactory = Callable[[], Storage]

_files = itertools.count(1)


def fresh_urls(backend: str, directory: Path, request: pytest.FixtureRequest) -> Callable[[], str]:
    """URLs of new, empty databases of ``backend``, one a call (files under ``directory``...).

    The fixtures a backend needs are looked up now, so the URLs can be made later (a hypothesis
    state machine makes storages as it goes).
    """
    if backend == "memory":
        return lambda: "memory://"
    if backend == "sqlite":
        return lambda: f"sqlite:///{directory / f'wf-{next(_files)}.db'}"
    if backend == "postgres":
        server = request.getfixturevalue("postgres_server")
        return lambda: str(server.fresh_url())
    raise AssertionError(f"no test database for backend {backend!r}: add it to tests/backends.py")


def fresh_storages(backend: str, directory: Path, request: pytest.FixtureRequest) -> StorageFactory:
    """Fresh, unopened storages of ``backend``, each on a database of its own."""
    urls = fresh_urls(backend, directory, request)
    return lambda: storage_from_url(urls())


def shared_url(backend: str, directory: Path, request: pytest.FixtureRequest) -> str:
    """The URL of one new database that several storage objects open, as processes would."""
    if backend == "sqlite":
        return f"sqlite:///{directory / 'shared.db'}"
    if backend in SHARED:
        return fresh_urls(backend, directory, request)()
    raise AssertionError(f"{backend!r} cannot share a database between storage objects")
