"""What every run driver of a process shares: storage, codec, clock, lease owner, settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyworkflow.storage.records import RunRecord

if TYPE_CHECKING:
    from pyworkflow._engine.clock import Clock
    from pyworkflow._engine.remote import StepRouter
    from pyworkflow.serialization import Codec
    from pyworkflow.step import StepDefinition
    from pyworkflow.storage.protocol import Storage

__all__ = ["Engine", "EngineSettings"]


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Knobs of the turn loop.

    Attributes:
        lease_seconds: how long a lease lasts without renewal; a dead worker's runs are taken
            over this long after its last heartbeat.
        horizon_seconds: a run waiting longer than this lets go of its coroutine and lease.
        max_recoveries: take-overs of a run without progress before it is failed.
    """

    lease_seconds: float = 15.0
    horizon_seconds: float = 5.0
    max_recoveries: int = 5


@dataclass(slots=True)
class Engine:
    """What every driver of a process shares."""

    storage: Storage
    codec: Codec
    clock: Clock
    owner: str
    settings: EngineSettings = field(default_factory=EngineSettings)
    on_finished: Callable[[RunRecord], None] = lambda record: None
    """Called with the run's row as just committed, once it has ended."""
    on_new_runs: Callable[[list[str]], None] = lambda run_ids: None
    """Called with the ids of runs a commit just created (children, a continuation)."""
    on_signalled: Callable[[str], None] = lambda run_id: None
    """Called with the id of a run a driver just wrote to as an outside writer (a child's
    cancel request): the executor wakes it, as ``cancel_workflow`` does."""
    resolve_step: Callable[[StepDefinition], StepDefinition] | None = None
    """The definition whose function an attempt runs; the test toolkit swaps in fakes here."""
    remote: StepRouter | None = None
    """Where steps executed away from the driver go (Celery, or the local workers of a step's
    queue); None executes every step here."""

    def lease_until(self) -> float:
        """The expiry of a lease taken or renewed now."""
        return self.clock.now() + self.settings.lease_seconds

    def lease_holds(self, lease_expires_at: float) -> bool:
        """Whether a lease expiring at ``lease_expires_at`` may still be acted on now.

        Invariant (DESIGN §2.3): an owner acts on a run only while it can prove it holds it.
        Until a third of a lease before its expiry, the margin the heartbeat keeps too
        (``heartbeat.keep_leases``): a write that storage took that long to answer (an outage,
        retried on a new connection) may have come back with a lease already lapsing.
        """
        return self.clock.now() < lease_expires_at - self.settings.lease_seconds / 3
