"""The scheduler's tick: fire every schedule that is due, each slot's run created exactly once.

A tick asks storage for the earliest ``due_at`` (one step into ``ix_schedules_due_at``); when
that has come, it reads the due schedules and the live runs of those whose overlap policy needs
them, decides what each does (``_schedules.policy``) and writes each decision with one
``fire_schedule``: the schedule's new state and its slots' runs in one transaction, under the
version it read. Several schedulers (every worker runs one) race harmlessly: the one whose
version is current writes, the others write nothing, and a slot's run has an idempotency key
derived from the schedule and the slot, so even a scheduler that fires a slot again after a
crash finds the run instead of starting a second. A clock that jumps back finds nothing due (the
slots it would see again were consumed); one that jumps ahead catches up as the schedule's
``catchup_window`` says.

Only schedules of workflows registered here are fired (like claims): the run's deadline and
queue are its workflow's.
"""

from __future__ import annotations

import dataclasses
import logging

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

_BATCH = 500


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


class Scheduler:
    """Fires the due schedules of this process's workflows, a tick at a time.

    Args:
        engine: this process's engine (storage, clock, and ``on_new_runs`` to wake a worker).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def tick(self) -> float | None:
        """Fire whatever is due now; returns when the next schedule comes due (None: never).

        Raises:
            PyWorkflowError: storage failed; the caller tries again later.
        """
        storage = self.engine.storage
        names = registry.workflow_names()
        while True:
            now = self.engine.clock.now()
            next_due = await storage.next_schedule_due_at(workflow_names=names)
            if next_due is None or next_due > now:
                return next_due
            due = await storage.due_schedules(now=now, limit=_BATCH, workflow_names=names)
            await self.fire(due, now)
            if len(due) < _BATCH:
                # What the fires left due (a schedule another scheduler changed meanwhile)
                # waits for the next tick rather than spinning here.
                return await storage.next_schedule_due_at(workflow_names=names)

    async def fire(self, due: list[ScheduleRecord], now: float) -> None:
        """Fire these due schedules; each stands or falls on its own."""
        storage = self.engine.storage
        watched = [s.schedule_id for s in due if s.overlap_policy != OverlapPolicy.ALLOW_ALL.value]
        live = await storage.live_schedule_runs(watched) if watched else {}
        fires = []
        for schedule in due:
            try:
                spec = ScheduleSpec.from_json(schedule.spec)
                fire = fire_for(schedule, spec, now=now, running=live.get(schedule.schedule_id, []))
            except Exception:  # one bad schedule must not stop the others
                _log.exception("schedule %r cannot fire; skipped", schedule.schedule_id)
                continue
            if fire is not None:
                fires.append(fire)
        # One transaction for the lot (PostgreSQL: a few statements), each fire on its own.
        outcomes = await storage.fire_schedules(fires)
        started = [run_id for ids in outcomes if ids for run_id in ids]
        if started:
            self.engine.on_new_runs(started)
        for fire, ids in zip(fires, outcomes, strict=True):
            if ids is not None:
                for run_id in fire.cancel:
                    self.engine.on_signalled(run_id)  # its driver, if here, hears it now
