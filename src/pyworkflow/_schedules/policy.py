"""What a schedule does at a tick: which due slots start, wait, are skipped, and what is cancelled.

Pure functions of the schedule's state, the time and its live runs, so that the rules read in
one place and are tested without storage. The tick (``_engine/scheduler.py``) writes what they
decide in one ``fire_schedule``.

Catch-up: a scheduler that was down (or a schedule that was paused and resumed) finds slots in
the past. With ``catchup_window`` None (the default) only the latest missed slot starts, as
Temporal does; slots less than :data:`GRACE` late are not missed, only late (a tick that ran a
second late starts both slots of an every-second schedule). With a window, every slot younger
than the window starts, in order. The older ones are counted in ``skipped_runs``, never
started late.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pyworkflow._schedules.slots import jitter_offset, next_slot
from pyworkflow._schedules.specs import OverlapPolicy, ScheduleSpec
from pyworkflow.storage.records import ScheduleRecord

__all__ = ["GRACE", "MAX_COUNTED", "Plan", "due_slots", "plan", "upcoming_due_at"]

GRACE = 60.0
"""Seconds a slot may be late and still start under the default catch-up (no window)."""

MAX_COUNTED = 10_000
"""Missed slots counted one by one at most (an every-second schedule down for a month has
millions); past this many the count stops growing and the tick jumps to the recent slots."""

# Once counting stopped (MAX_COUNTED), the latest missed slot is looked for this far back.
_LOOK_BACK = 86400.0


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """What one tick does to one schedule.

    Attributes:
        start: slots whose runs start now, in order.
        buffered: slots left waiting for the running run to end.
        skipped: slots not started (missed beyond the catch-up window, or refused by policy).
        cancel: live runs to ask to cancel (CANCEL_OTHER).
    """

    start: tuple[float, ...]
    buffered: tuple[float, ...]
    skipped: int
    cancel: tuple[str, ...] = ()


def due_slots(
    schedule: ScheduleRecord, spec: ScheduleSpec, now: float
) -> tuple[list[float], int, float | None]:
    """The slots due at ``now`` that catch-up keeps, how many it dropped, and the next slot.

    A slot is due once ``now`` reaches it plus its jitter.
    """
    jitter = spec.jitter_seconds
    window = schedule.catchup_window
    keep = GRACE if window is None else window
    anchor = schedule.created_at
    due: list[float] = []
    dropped = 0
    last_missed = None
    slot = schedule.next_slot_at
    while slot is not None and slot + jitter_offset(schedule.schedule_id, slot, jitter) <= now:
        if slot >= now - keep:
            due.append(slot)
        else:
            dropped += 1
            last_missed = slot
            if dropped == MAX_COUNTED:  # stop counting one by one: jump to the recent slots
                back = now - max(keep, _LOOK_BACK if window is None else 0.0)
                if back > slot:
                    slot = next_slot(spec, back, anchor=anchor)
                    continue
        slot = next_slot(spec, slot, anchor=anchor)
    if window is None and last_missed is not None and not due:
        due.append(last_missed)  # the latest missed slot starts
        dropped -= 1
    return due, dropped, slot


def plan(
    policy: OverlapPolicy,
    due: Sequence[float],
    buffered: Sequence[float],
    running: Sequence[str],
) -> Plan:
    """What the overlap policy does with the waiting and due slots, given the live runs.

    Waiting (buffered) slots come before due ones: they are older. At most one slot starts
    while runs of the schedule are live, except under ALLOW_ALL, which starts every one.
    """
    slots = [*buffered, *due]
    if not slots:
        return Plan((), (), 0)
    busy = bool(running)
    if policy is OverlapPolicy.ALLOW_ALL:
        return Plan(tuple(slots), (), 0)
    if policy is OverlapPolicy.CANCEL_OTHER:
        return Plan((slots[-1],), (), len(slots) - 1, tuple(running))
    if policy is OverlapPolicy.SKIP:
        if busy:
            return Plan((), (), len(slots))
        return Plan((slots[0],), (), len(slots) - 1)
    if policy is OverlapPolicy.BUFFER_ONE:
        if busy:
            return Plan((), tuple(slots[:1]), len(slots) - 1)
        return Plan((slots[0],), tuple(slots[1:2]), max(0, len(slots) - 2))
    # BUFFER_ALL: each waits its turn.
    if busy:
        return Plan((), tuple(slots), 0)
    return Plan((slots[0],), tuple(slots[1:]), 0)


def upcoming_due_at(
    schedule_id: str, spec: ScheduleSpec, next_slot_at: float | None
) -> float | None:
    """When the slot ``next_slot_at`` is due: the slot plus its jitter (None: no slot left)."""
    if next_slot_at is None:
        return None
    return next_slot_at + jitter_offset(schedule_id, next_slot_at, spec.jitter_seconds)
