"""The pytest plugin: a ``workflow_env`` fixture, on memory or SQLite.

Registered as a ``pytest11`` entry point, so installing pyworkflow makes the fixture available
to every test suite. Each test gets a fresh ``WorkflowEnvironment``. Storage, first match wins:
``--pyworkflow-storage``, then ``PYWORKFLOW_TEST_STORAGE``, then ``memory``. ``sqlite`` is a
fresh file under the test's ``tmp_path``; any other value is a storage URL used as is.

Example:
    >>> async def test_reminder(workflow_env):  # doctest: +SKIP
    ...     assert await workflow_env.run(remind, "ada") == "sent"

    $ pytest --pyworkflow-storage sqlite      # the same tests, on SQLite
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyworkflow.testing._environment import WorkflowEnvironment

__all__ = ["pytest_addoption", "pytest_configure", "workflow_env"]

_OPTION = "--pyworkflow-storage"
_ENV_VAR = "PYWORKFLOW_TEST_STORAGE"

try:
    # In pytest-asyncio's strict mode only its own decorator makes an async fixture.
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # another plugin (anyio's) drives async fixtures then
    # Both decorators take a fixture function the same way; their overloads differ in name only.
    _async_fixture = pytest.fixture  # type: ignore[assignment]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--pyworkflow-storage`` (``memory``, ``sqlite`` or a URL) for ``workflow_env``."""
    parser.getgroup("pyworkflow").addoption(
        _OPTION,
        default=None,
        metavar="STORAGE",
        help=(
            "storage of the workflow_env fixture: 'memory' (default), 'sqlite' (a fresh file "
            f"per test) or a storage URL; also from ${_ENV_VAR}"
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a bad ``--pyworkflow-storage`` before any test runs, not in every test."""
    chosen = config.getoption(_OPTION) or os.environ.get(_ENV_VAR)
    if chosen in (None, "", "memory", "sqlite"):
        return
    from pyworkflow.exceptions import ConfigurationError
    from pyworkflow.storage import storage_from_url

    try:
        storage_from_url(str(chosen))
    except ConfigurationError as exc:
        raise pytest.UsageError(f"{_OPTION} / ${_ENV_VAR}: {exc}") from exc


def _storage_for(request: pytest.FixtureRequest) -> str:
    chosen = request.config.getoption(_OPTION) or os.environ.get(_ENV_VAR) or "memory"
    if chosen == "memory":
        return "memory://"
    if chosen == "sqlite":
        tmp_path: Path = request.getfixturevalue("tmp_path")
        return f"sqlite:///{tmp_path / 'workflow_env.db'}"
    return str(chosen)


@_async_fixture
async def workflow_env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    """A fresh ``WorkflowEnvironment`` for one test; see the module docstring for its storage."""
    from pyworkflow.testing._environment import WorkflowEnvironment

    async with WorkflowEnvironment(storage=_storage_for(request)) as env:
        yield env
