"""Waiting until a run executed here has *settled*: ended, or waiting on nothing due now.

``configure(start_waits=True)`` makes ``start()`` (and ``resume()``) return only then, the way
code written for a single-process runtime expects: it reads the run's status and result right
after ``start()`` and finds it completed, failed, or suspended on a timer, a hook or a retry
delay. A run waiting on children settles once they have (each child settles the same way,
and their ends wake the parent, which then runs on); a run that continues as new settles with
the last run of its chain.

What this process does not execute settles at once: a run of a queue it does not serve, a
run another worker drives, a process that is client only (``LocalExecutor.settle`` decides).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyworkflow._backoff import Backoff
from pyworkflow.events import RunStatus

if TYPE_CHECKING:
    from pyworkflow._engine.driver import RunDriver
    from pyworkflow.executors.local import LocalExecutor
    from pyworkflow.storage.records import RunRecord

__all__ = ["settle"]

_UNFINISHED = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.SUSPENDED)
_MAX_CHILDREN = 1000  # children followed per parent; a parent with more settles without them


async def settle(executor: LocalExecutor, run_id: str) -> None:
    """Return once ``run_id`` (and what it waits on here) has settled; see the module doc."""
    pauses = Backoff(0.002, 0.1)
    storage = executor.engine.storage
    while True:
        driver = executor.driver_of(run_id)
        if driver is not None and _busy(driver):
            # Driven here and busy: its next commit says more (no storage read meanwhile).
            await driver.status_changed(0.5)
            continue
        record = executor.ended_here(run_id) or await storage.get_run(run_id)
        if record is None:
            return
        if record.status is RunStatus.CONTINUED_AS_NEW and record.continued_to:
            run_id = record.continued_to  # the chain's next run
            continue
        if record.status.is_terminal:
            return
        driver = executor.driver_of(run_id)  # again: the read above let its driver move on
        if driver is not None and _busy(driver):
            continue
        if driver is not None and record.signal_seq > driver.signals_seen:
            # An outside write (a cancel, a hook's payload, a child's end) it has yet to take.
            await driver.status_changed(pauses.next())
            continue
        if _due_here(executor, record, driven=driver is not None):
            await executor.wait_finished(run_id, pauses.next())
            continue
        if record.status is not RunStatus.SUSPENDED:
            return  # executed elsewhere
        children = await storage.list_runs(
            parent_run_id=run_id, statuses=_UNFINISHED, limit=_MAX_CHILDREN
        )
        if not children:
            return
        for child in children:
            await settle(executor, child.run_id)
        again = await storage.get_run(run_id)
        if again is None or (
            again.last_seq == record.last_seq
            and again.signal_seq == record.signal_seq
            and not _due_here(executor, again, driven=executor.driver_of(run_id) is not None)
        ):
            return  # its children settled and nothing woke it: it waits on them for now
        pauses = Backoff(0.002, 0.1)


def _busy(driver: RunDriver) -> bool:
    return driver.turning or driver.status in (RunStatus.RUNNING, RunStatus.PENDING)


def _due_here(executor: LocalExecutor, record: RunRecord, *, driven: bool) -> bool:
    """Whether this process will execute ``record`` now (so it has not settled)."""
    if driven:
        return False  # its driver holds it, waiting on something not due yet
    if not executor.serves(record.queue):
        return False
    if record.status is RunStatus.PENDING:
        return True
    if record.lease_owner == executor.owner:
        return True  # claimed here a moment ago: its driver is about to take it
    if record.status is RunStatus.RUNNING:
        # A lease that is ours (a driver about to be adopted) or none: it will run here.
        return record.lease_owner in (None, executor.owner)
    wake_at = record.wake_at
    return wake_at is not None and wake_at <= executor.now()
