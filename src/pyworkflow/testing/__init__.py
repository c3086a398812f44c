"""Test toolkit: run workflows on a virtual clock, fake steps, a pytest fixture, replay checks.

``WorkflowEnvironment`` runs the real engine on a ``VirtualClock`` that skips to the next timer
whenever nothing is working; the ``workflow_env`` pytest fixture (a ``pytest11`` plugin, loaded
when pyworkflow is installed) yields one per test, on SQLite instead of memory with
``--pyworkflow-storage sqlite`` or ``PYWORKFLOW_TEST_STORAGE=sqlite``.

Example:
    >>> from pyworkflow.testing import WorkflowEnvironment
    >>> async def test_reminder() -> None:  # doctest: +SKIP
    ...     async with WorkflowEnvironment() as env:
    ...         assert await env.run(remind, "ada") == "sent"
"""

from pyworkflow.testing._clock import VirtualClock
from pyworkflow.testing._environment import WorkflowEnvironment
from pyworkflow.testing._history import (
    HISTORY_FORMAT,
    RecordedHistory,
    load_history,
    save_history,
)
from pyworkflow.testing._replay import ReplayResult, replay_history, replay_run, replay_runs

__all__ = [
    "HISTORY_FORMAT",
    "RecordedHistory",
    "ReplayResult",
    "VirtualClock",
    "WorkflowEnvironment",
    "load_history",
    "replay_history",
    "replay_run",
    "replay_runs",
    "save_history",
]
