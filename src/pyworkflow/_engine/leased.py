"""Driving one run that this process has just leased, alone, under a heartbeat of its own.

For an executor that takes runs one at a time, in tasks (Celery's ``advance`` and step tasks):
the driver runs as a task while ``heartbeat.keep_leases`` renews the run's lease, and the run is
given up (its driver cancelled) the moment the lease is lost or can no longer be renewed. The
local executor drives many runs at once and renews their leases together instead.
"""

from __future__ import annotations

import asyncio
import logging

from pyworkflow import registry
from pyworkflow._engine.driver import RunDriver
from pyworkflow._engine.engine import Engine
from pyworkflow._engine.heartbeat import keep_leases
from pyworkflow._engine.remote import FinishedAttempt
from pyworkflow.exceptions import PyWorkflowError
from pyworkflow.logging import run_logger
from pyworkflow.storage.records import EventRecord, RunRecord

__all__ = ["drive_leased"]

_log = logging.getLogger("pyworkflow.executor")


async def drive_leased(
    engine: Engine,
    run: RunRecord,
    *,
    finished: FinishedAttempt | None = None,
    history: list[EventRecord] | None = None,
) -> None:
    """Drive ``run`` (leased by ``engine.owner`` a moment ago) until it lets go of it.

    A run of a workflow not registered here is handed back at once.

    Args:
        engine: this process's engine.
        run: the run's row, as the claim returned it.
        finished: an attempt executed away from the driver, whose outcome it logs.
        history: the run's log, when the caller has just read it.
    """
    try:
        workflow = registry.get_workflow(run.workflow_name)
    except PyWorkflowError as exc:
        run_logger(run.run_id, run.workflow_name, name=_log.name).error("cannot drive: %s", exc)
        await engine.storage.release_runs(
            owner=engine.owner, run_ids=[run.run_id], now=engine.clock.now()
        )
        return
    driver = RunDriver(engine, run, workflow, finished=finished, history=history)
    loop = asyncio.get_running_loop()
    task = loop.create_task(driver.drive(), name=run.run_id)

    def held() -> list[str]:
        return [run.run_id] if driver.holds_lease and not task.done() else []

    async def renew(run_ids: list[str], expiry: float) -> set[str]:
        return await engine.storage.renew_leases(
            owner=engine.owner, run_ids=run_ids, now=engine.clock.now(), lease_expires_at=expiry
        )

    def lost(_run_ids: list[str], why: str) -> None:
        if driver.holds_lease:  # not when its own last commit let the run go
            run_logger(run.run_id, run.workflow_name, name=_log.name).warning("%s", why)
            task.cancel()

    beat = loop.create_task(
        keep_leases(
            clock=engine.clock,
            lease_seconds=engine.settings.lease_seconds,
            held=held,
            renew=renew,
            lost=lost,
            log=_log,
        )
    )
    try:
        await asyncio.wait({task})  # a driver the heartbeat cancelled (lease lost) is no error
    finally:
        beat.cancel()
        if not task.done():
            task.cancel()
    if not task.cancelled():
        task.result()
