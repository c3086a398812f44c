"""When a driver lets its run go, and how it says so.

A driver keeps its run while something it waits on is due soon; otherwise it commits a release
and the run waits in storage (DESIGN §2.6). On shutdown, or when a commit comes back too late
to trust the lease, it hands the lease back so another worker can take the run at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING

from pyworkflow.durations import to_datetime
from pyworkflow.exceptions import PyWorkflowError

if TYPE_CHECKING:
    from pyworkflow._engine.activation import WorkflowActivation
    from pyworkflow._engine.engine import Engine
    from pyworkflow._engine.inflight import InFlight

__all__ = ["LeaseInDoubt", "hand_back", "log_suspended", "suspend_due"]


class LeaseInDoubt(Exception):
    """A commit came back so late that the run's lease may have lapsed meanwhile."""


def suspend_due(
    inflight: InFlight, activation: WorkflowActivation | None, horizon: float, now: float
) -> bool:
    """Whether a run with no step running should be let go: it waits on nothing due soon.

    Hooks and children have no time: a run that waits only on them (and on timers beyond
    the horizon) is let go at once, and their outside writer makes it due again; except
    under an infinite horizon (the test environment), which keeps every waiting run.
    """
    first = inflight.earliest_timer()
    if first is not None:
        return first - now > horizon
    waits_outside = activation is not None and bool(activation.outside_waits())
    waits_outside = waits_outside or bool(inflight.remote_watch)
    return waits_outside and math.isfinite(horizon)


def log_suspended(log: logging.LoggerAdapter[logging.Logger], inflight: InFlight) -> None:
    """Say until when a run that was just let go sleeps."""
    if log.isEnabledFor(logging.INFO):
        first = inflight.earliest_wake()
        until = (
            "a hook or child" if first is None else to_datetime(first).isoformat(timespec="seconds")
        )
        log.info("suspended until %s", until)


async def hand_back(
    engine: Engine, run_id: str, log: logging.LoggerAdapter[logging.Logger]
) -> None:
    """Give the run's lease back (shutdown, or a lease in doubt); the lease lapses if it fails."""
    try:
        await asyncio.shield(
            engine.storage.release_runs(
                owner=engine.owner, run_ids=[run_id], now=engine.clock.now()
            )
        )
    except (PyWorkflowError, asyncio.CancelledError):
        log.warning("could not hand the run back; its lease will expire instead")
