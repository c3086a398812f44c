"""The engine tests run on the project's own test toolkit: memory storage and a virtual clock.

``env`` is an open ``WorkflowEnvironment`` (the real engine, a ``LocalExecutor`` on a
``VirtualClock``, a ``MemoryStorage``) with the horizon of the rest of the suite,
``HORIZON_SECONDS``: a run that waits longer lets go of its coroutine and lease and is claimed
again from storage when it is due, as in production, so a test of a suspended run means what
it says. Time moves only while a test
awaits a result (or calls ``env.advance``): a day of sleeps and retry delays takes
milliseconds, and the assertions about time read the virtual clock, exactly.

The public API (``pyworkflow.start``, ``get_workflow_result`` ...) goes to the environment while
it is open. A test that wants another horizon calls ``waits.set_horizon`` before it starts a
run; ``waits.restart(env)`` stands for a new worker process over the same storage.

Where a test is about a backend (what SQLite writes to its file, several processes on one
database, a kill -9), it uses the real-time fixtures of tests/conftest.py (``pw``,
``pw_sqlite``, ...); storage semantics on every backend are the contract suite's (tests/contract).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pyworkflow.storage import MemoryStorage
from pyworkflow.testing import WorkflowEnvironment

from .waits import set_horizon

HORIZON_SECONDS = 5.0
"""As in tests/conftest.py: sleeps below it keep their coroutine, longer waits are rows only."""


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """An open ``WorkflowEnvironment`` (memory storage, virtual clock) with the suite's horizon.

    The storage is handed in, not made by the environment, so that ``waits.restart`` can close
    the environment and open it again on the same runs.
    """
    async with WorkflowEnvironment(storage=MemoryStorage()) as opened:
        await set_horizon(HORIZON_SECONDS)
        yield opened
