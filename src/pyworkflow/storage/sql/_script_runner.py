"""How SqlStorage runs a script: the one thing a dialect must say, and its two variants.

The base of :class:`~pyworkflow.storage.sql.SqlStorage` and of each group of its methods
(``_lease_methods.py``, ``_step_methods.py``, ``_owner_methods.py``, ``_schedule_methods.py``),
which call :meth:`ScriptRunner._run` and know nothing of connections or transactions.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from pyworkflow.storage.sql._session import Session

__all__ = ["Script", "ScriptRunner"]

_T = TypeVar("_T")

Script = Callable[[Session], Coroutine[Any, Any, _T]]
"""A script bound to its arguments: what ``SqlStorage._run`` runs on a session."""


class ScriptRunner(abc.ABC):
    """Runs a script on a session of a dialect; the dialect implements :meth:`_run`."""

    @abc.abstractmethod
    async def _run(self, script: Script[_T], *, writes: bool) -> _T:
        """Run ``script`` on a session of this dialect; what it returns or raises.

        ``writes``: the script writes, so it runs inside one write transaction (which it may
        share with other scripts, each still succeeding or failing on its own). The dialect
        translates its driver's errors into StorageError here, the cause chained.
        """

    async def _run_whole(self, script: Script[_T], *, writes: bool) -> _T:
        """Run ``script`` in one transaction that sees one state of the database, all or nothing.

        For the scripts that read or write runs whole (``_scripts/snapshots.py``), whose
        statements must not see a write committed between them. The default runs it as a
        write (SQLite: ``BEGIN IMMEDIATE``, which holds the write lock, so a read there is
        one state too); a dialect whose writes each commit on their own overrides it.
        """
        return await self._run(script, writes=True)

    async def _run_atomic(self, script: Script[_T]) -> _T:
        """Run a writing ``script`` in one transaction, all of its statements or none.

        For the scripts that write several statements which must stand or fall together
        (firing a schedule: its state and its slots' runs). The default is :meth:`_run`
        (SQLite runs each writing script in one transaction of its own, or a savepoint of a
        shared one); a dialect whose writes each commit on their own overrides it.
        """
        return await self._run(script, writes=True)
