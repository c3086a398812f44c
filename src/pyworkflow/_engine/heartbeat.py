"""Keeping leases alive while work runs, and letting go of them before they can lapse.

Every lease holder (a process driving runs, a Celery task driving one run or executing one
step) renews its leases a few times per lease period. A renewal that storage refuses means
another owner has the lease now; a renewal that storage does not answer (the database is down,
the network is cut) means the lease runs out unrenewed. Either way the holder must stop acting
on that work before someone else may start it (DESIGN §2.3): the heartbeat gives the work up a
third of a lease before the last renewal's expiry, so a driver never runs on a lease another
worker may be taking over.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection

from pyworkflow._engine.clock import Clock, within
from pyworkflow.exceptions import PyWorkflowError

__all__ = ["keep_leases"]


async def keep_leases(
    *,
    clock: Clock,
    lease_seconds: float,
    held: Callable[[], list[str]],
    renew: Callable[[list[str], float], Awaitable[Collection[str]]],
    lost: Callable[[list[str], str], None],
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> None:
    """Renew the leases of ``held()`` every third of a lease until cancelled.

    Args:
        clock: the engine's clock (a virtual one in the test toolkit).
        lease_seconds: how long a lease lasts unrenewed.
        held: the ids whose leases to renew now (read afresh each round).
        renew: renews the given ids until the given expiry; returns the ids still held.
        lost: called with ids whose lease is gone or may lapse, and why: stop their work now.
        log: where failed renewals are reported.
    """
    valid_until = clock.now() + lease_seconds
    while True:
        await clock.sleep_until(clock.now() + lease_seconds / 3)
        ids = held()
        if not ids:
            valid_until = clock.now() + lease_seconds
            continue
        expiry = clock.now() + lease_seconds
        give_up_at = valid_until - lease_seconds / 3
        try:
            kept = await within(clock, give_up_at, renew(ids, expiry))
        except (PyWorkflowError, TimeoutError) as exc:
            reason = str(exc) or "storage did not answer"
            if clock.now() < give_up_at:
                log.warning("renewing leases failed, trying again: %s", reason)
                continue
            lost(ids, f"could not renew its lease before it may lapse ({reason}); giving it up")
            continue
        valid_until = expiry
        gone = [i for i in ids if i not in kept]
        if gone:
            lost(gone, "lost the lease; dropping it")
