"""The pytest plugin: a ``workflow_env`` fixture, on memory or SQLite.

Registered as a ``pytest11`` entry point, so installing pyworkflow makes the fixture available
to every test suite. Each test gets a fresh ``WorkflowEnvironment``. Storage, first match wins:
``--pyworkflow-storage``, then ``PYWORKFLOW_TEST_STORAGE``, then ``memory``. ``sqlite`` is a
fresh file under the test's ``tmp_path``; any other value is a storage URL used as is.

An ``async def`` test that uses the fixture needs nothing else: the plugin marks it for
pytest-asyncio (``pytest.mark.asyncio``), so it runs whatever the project's ``asyncio_mode``.
A test marked for another async runner (``anyio``) is left to it. Without pytest-asyncio
installed (it comes with the ``testing`` extra), such a test fails saying so, rather than
with pytest's "async def functions are not natively supported".

Example:
    >>> async def test_reminder(workflow_env):  # doctest: +SKIP
    ...     assert await workflow_env.run(remind, "ada") == "sent"

    $ pytest --pyworkflow-storage sqlite      # the same tests, on SQLite
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyworkflow.testing._environment import WorkflowEnvironment

__all__ = [
    "pytest_addoption",
    "pytest_configure",
    "pytest_pycollect_makeitem",
    "pytest_runtest_setup",
    "workflow_env",
]

_OPTION = "--pyworkflow-storage"
_ENV_VAR = "PYWORKFLOW_TEST_STORAGE"
_FIXTURE = "workflow_env"
# Markers of the async runners that take a coroutine test: pytest-asyncio's and anyio's.
_RUNNER_MARKS = ("asyncio", "anyio")

try:
    # In pytest-asyncio's strict mode only its own decorator makes an async fixture. The loop
    # is the test's own (function scope), whatever the project's default fixture loop scope.
    from pytest_asyncio import fixture as _asyncio_fixture

    _async_fixture = _asyncio_fixture(loop_scope="function")
except ImportError:  # another plugin (anyio's) drives async fixtures then
    # Both decorators take a fixture function the same way; their overloads differ in name only.
    _async_fixture = pytest.fixture


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


def _is_async_test_of_ours(item: pytest.Item) -> bool:
    return (
        isinstance(item, pytest.Function)
        and _FIXTURE in item.fixturenames
        and inspect.iscoroutinefunction(item.obj)
    )


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, object, object]:
    """Mark ``async def`` tests that use ``workflow_env`` for pytest-asyncio as they are made.

    This wrapper runs inside pytest-asyncio's own (``trylast``), so the mark is there when it
    decides which items it runs: in its strict mode an unmarked coroutine test is not its own.
    """
    made = yield
    if not collector.config.pluginmanager.has_plugin("asyncio"):
        return made
    items = made if isinstance(made, list) else [made]
    for item in items:
        if (
            isinstance(item, pytest.Item)
            and _is_async_test_of_ours(item)
            and not any(item.get_closest_marker(mark) for mark in _RUNNER_MARKS)
        ):
            item.add_marker(pytest.mark.asyncio)
    return made


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail an ``async def`` test using ``workflow_env`` that no async plugin will run."""
    if not _is_async_test_of_ours(item):
        return
    asyncio_runs_it = item.get_closest_marker("asyncio") and item.config.pluginmanager.has_plugin(
        "asyncio"
    )
    anyio_runs_it = item.get_closest_marker("anyio") and item.config.pluginmanager.has_plugin(
        "anyio"
    )
    if not (asyncio_runs_it or anyio_runs_it):
        pytest.fail(
            f"{item.name} is an async test using the {_FIXTURE} fixture, and no plugin runs "
            "async tests here: install pytest-asyncio (pip install 'pyworkflow-durable[testing]'"
            ") and pyworkflow marks such tests for it, or mark the test for the async plugin "
            "you use (@pytest.mark.anyio)",
            pytrace=False,
        )


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
