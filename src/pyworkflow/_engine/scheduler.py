"""The scheduler's tick: fire every schedule that is due, each slot's run created exactly once.

A tick reads the due schedules a page at a time (a walk of ``ix_schedules_due_at``; nothing
when idle) with the live runs of those whose overlap policy needs them, decides what each does
(``_schedules.policy``) and writes each decision as ``fire_schedule`` would: the schedule's new
state and its slots' runs in one transaction, under the version it read. Several schedulers
(every worker runs one) race harmlessly: the one whose version is current writes, the others
write nothing, and a slot's run has an idempotency key derived from the schedule and the slot,
so even a scheduler that fires a slot again after a crash finds the run instead of starting a
second. A clock that jumps back finds nothing due (the slots it would see again were consumed);
one that jumps ahead catches up as the schedule's ``catchup_window`` says.

Only schedules of workflows registered here are fired (like claims): the run's deadline and
queue are its workflow's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from pyworkflow import registry
from pyworkflow._engine.engine import Engine
from pyworkflow._engine.new_runs import new_run
from pyworkflow._schedules.policy import due_slots, plan, upcoming_due_at
from pyworkflow._schedules.slots import slot_key
from pyworkflow._schedules.specs import OverlapPolicy, ScheduleSpec, overlap_policy
from pyworkflow.storage.records import ScheduleFire, ScheduleRecord

__all__ = ["BUFFER_RECHECK", "Scheduler", "fire_for"]

_log = logging.getLogger("pyworkflow.scheduler")

BUFFER_RECHECK = 1.0
"""Seconds between two looks at a schedule whose buffered slot waits for a run to end."""

_BATCH = 2000
"""Fires planned before their writes are awaited: what a tick holds in flight at most."""
_FIRST_PAGE = 100
"""Due schedules in a tick's first read: their runs are written while the rest are read."""
_CHUNK = 100
# Fires planned and written together; smaller chunks overlap more, each costs a transaction.
_ALLOW_ALL = OverlapPolicy.ALLOW_ALL.value


def fire_for(
    schedule: ScheduleRecord,
    spec: ScheduleSpec,
    *,
    now: float,
    running: list[str],
) -> ScheduleFire | None:
    """The fire that the tick at ``now`` makes of a due schedule (None: nothing to write).

    Raises:
        WorkflowNotFoundError: its workflow is not registered here.
    """
    policy = overlap_policy(schedule.overlap_policy)
    due, dropped, upcoming = due_slots(schedule, spec, now)
    decided = plan(policy, due, schedule.buffered, running)
    wf = registry.get_workflow(schedule.workflow_name)
    runs = [
        new_run(
            wf,
            schedule.args,
            now=now,
            idempotency_key=slot_key(schedule.schedule_id, slot),
            schedule_id=schedule.schedule_id,
            schedule_slot_at=slot,
        )
        for slot in decided.start
    ]
    due_at = upcoming_due_at(schedule.schedule_id, spec, upcoming)
    if decided.buffered:  # look again soon: the buffered slot starts when the run ends
        due_at = now + BUFFER_RECHECK if due_at is None else min(due_at, now + BUFFER_RECHECK)
    state = dataclasses.replace(
        schedule,
        next_slot_at=upcoming,
        due_at=due_at,
        buffered=decided.buffered,
        skipped_runs=schedule.skipped_runs + dropped + decided.skipped,
        last_slot_at=decided.start[-1] if decided.start else schedule.last_slot_at,
        updated_at=now,
    )
    reason = None
    if decided.cancel:
        reason = f"schedule {schedule.schedule_id!r} started a newer run (CANCEL_OTHER)"
    return ScheduleFire(state, runs=runs, cancel=decided.cancel, cancel_reason=reason, now=now)


_Write = tuple[list[ScheduleFire], "asyncio.Task[list[list[str] | None]]"]


class Scheduler:
    """Fires the due schedules of this process's workflows, a tick at a time.

    Args:
        engine: this process's engine (storage, clock, and ``on_new_runs`` to wake a worker).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def tick(self) -> float | None:
        """Fire whatever is due now; returns when the next schedule comes due (None: never).

        What is still due after the fires (one another scheduler changed meanwhile, or one
        created elsewhere for now) is not looked for again here: the next tick sees it,
        at the latest one poll later.

        Raises:
            PyWorkflowError: storage failed; the caller tries again later.
        """
        storage = self.engine.storage
        names = registry.workflow_names()
        now = self.engine.clock.now()
        # Read beside the fires, not after them: they move only schedules due by ``now`` and
        # know where each goes, so this read past ``now`` and their new due times together
        # say when the next is due.
        later = asyncio.create_task(storage.next_schedule_due_at(workflow_names=names, after=now))
        try:
            upcoming = await self._fire_due(now, names)
        except BaseException:
            _abandon(later)
            raise
        return min((t for t in (await later, *upcoming) if t is not None), default=None)

    async def _fire_due(self, now: float, names: list[str]) -> list[float]:
        """Fire every schedule due at ``now``; the new due times of those written.

        Up to ``_BATCH`` due schedules at a time, read in two pages: the first
        ``_FIRST_PAGE``, then the rest, read while the first page is planned and written. Each
        page is planned and written a chunk (``_CHUNK``) at a time, each chunk's write in
        flight while the next is planned: the first runs are written at once, and the
        database works while Python plans, as it does for many ``start()`` calls at once
        (B10). Not more pages: on SQLite, whose one connection serves reads and writes in
        turn, each read waits for the writes queued before it. Each chunk's fires are one
        ``fire_schedules`` (a transaction); a chunk whose write failed leaves its schedules
        due for the next tick, after the others' runs were announced.
        """
        upcoming: list[float] = []
        after: tuple[float, str] | None = None
        while True:
            writes: list[_Write] = []
            rest: asyncio.Task[list[ScheduleRecord]] | None = None
            try:
                first = await self._due(now, names, after, _FIRST_PAGE)
                after = _past(first, _FIRST_PAGE)
                if after is not None:
                    rest = asyncio.create_task(self._due(now, names, after, _BATCH - _FIRST_PAGE))
                await self._write_page(first, now, writes)
                if rest is not None:
                    page = await rest
                    after = _past(page, _BATCH - _FIRST_PAGE)
                    await self._write_page(page, now, writes)
            except Exception:
                if rest is not None:
                    _abandon(rest)
                upcoming += await self._settle(writes)  # announce what was written, then fail
                raise
            except BaseException:
                for task in (rest, *(task for _, task in writes)):
                    if task is not None:
                        task.cancel()
                raise
            upcoming += await self._settle(writes)
            if after is None:
                return upcoming

    async def _due(
        self, now: float, names: list[str], after: tuple[float, str] | None, size: int
    ) -> list[ScheduleRecord]:
        """The next ``size`` due schedules past ``after``."""
        return await self.engine.storage.due_schedules(
            now=now, limit=size, workflow_names=names, after=after
        )

    async def _write_page(
        self, page: list[ScheduleRecord], now: float, writes: list[_Write]
    ) -> None:
        """Plan a page's fires a chunk at a time, starting each chunk's write (into ``writes``)."""
        storage = self.engine.storage
        watched = [s.schedule_id for s in page if s.overlap_policy != _ALLOW_ALL]
        live = await storage.live_schedule_runs(watched) if watched else {}
        for begin in range(0, len(page), _CHUNK):
            fires = self._plan(page[begin : begin + _CHUNK], live, now)
            if fires:
                writes.append((fires, asyncio.create_task(storage.fire_schedules(fires))))
                await asyncio.sleep(0)  # let the write reach the database, then plan on

    def _plan(
        self, page: list[ScheduleRecord], live: dict[str, list[str]], now: float
    ) -> list[ScheduleFire]:
        """The fires of a page; a schedule that cannot fire is logged and left due."""
        fires = []
        for schedule in page:
            try:
                spec = ScheduleSpec.from_json(schedule.spec)
                running = live.get(schedule.schedule_id, [])
                fire = fire_for(schedule, spec, now=now, running=running)
            except Exception:  # one bad schedule must not stop the others
                _log.exception("schedule %r cannot fire; skipped", schedule.schedule_id)
                continue
            if fire is not None:
                fires.append(fire)
        return fires

    async def _settle(self, writes: list[_Write]) -> list[float]:
        """Await the writes, announce what they wrote; the new due times of the fires written.

        Raises:
            PyWorkflowError: a write failed (the first failure, after the others announced).
        """
        outcomes = await asyncio.gather(*(task for _, task in writes), return_exceptions=True)
        failure: BaseException | None = None
        upcoming: list[float] = []
        for (fires, _), written in zip(writes, outcomes, strict=True):
            if isinstance(written, BaseException):
                failure = failure or written
                continue
            self._announce(fires, written)
            upcoming += [
                fire.schedule.due_at
                for fire, ids in zip(fires, written, strict=True)
                if ids is not None and fire.schedule.due_at is not None
            ]
        if failure is not None:
            raise failure
        return upcoming

    def _announce(self, fires: list[ScheduleFire], outcomes: list[list[str] | None]) -> None:
        """Wake this process's executor for the runs the fires started and cancelled."""
        started = [run_id for ids in outcomes if ids for run_id in ids]
        if started:
            self.engine.on_new_runs(started)
        for fire, ids in zip(fires, outcomes, strict=True):
            if ids is not None:
                for run_id in fire.cancel:
                    self.engine.on_signalled(run_id)  # its driver, if here, hears it now


def _past(page: list[ScheduleRecord], size: int) -> tuple[float, str] | None:
    """Where the next page starts: past a full page's last schedule (None: nothing is left)."""
    if len(page) < size:
        return None
    last = page[-1]
    assert last.due_at is not None  # a due schedule has a due time
    return (last.due_at, last.schedule_id)


def _abandon(task: asyncio.Task[Any]) -> None:
    """Cancel a read that a failed tick no longer needs, its outcome marked seen."""
    task.cancel()
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
