"""The Executor protocol: where and when runs' turns happen.

The engine owns "run one turn of a run" (``_engine.driver``); an executor only decides where
and when that call happens: in this process (``LocalExecutor``) or on Celery workers (later).
"""

from __future__ import annotations

from typing import Protocol

from pyworkflow.storage.records import NewRun, RunRecord

__all__ = ["Executor"]


class Executor(Protocol):
    """What the client needs from an executor."""

    @property
    def owner(self) -> str:
        """The lease owner id runs are claimed under."""

    def now(self) -> float:
        """The executor's clock."""

    def lease_until(self) -> float:
        """The expiry of a lease taken now."""

    async def create_run(self, new: NewRun) -> tuple[RunRecord, bool]:
        """Store a new run (idempotently) and have it driven; see ``Storage.create_run``."""

    def ended_here(self, run_id: str) -> RunRecord | None:
        """The committed row of a run that just ended in this executor, if it remembers it."""

    def has_capacity(self) -> bool:
        """Whether a run created now should be leased to this executor and driven at once."""

    def wake(self, run_id: str | None = None) -> None:
        """A run became due or was changed by an outside writer: look at storage now."""

    async def wait_finished(self, run_id: str, within: float | None) -> None:
        """Wait up to ``within`` seconds (None: no limit) for a run to end (may return early)."""

    def is_driving(self, run_id: str) -> bool:
        """True if this executor is driving the run right now."""

    async def settle(self, run_id: str) -> None:
        """Return once the run has ended or waits on nothing this executor will do now."""

    async def serve(self) -> None:
        """Work until cancelled."""

    async def shutdown(self) -> None:
        """Hand back every run and stop."""
