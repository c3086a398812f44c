"""When a schedule's slots fall: the next slot after a time, the slots in a range, jitter.

Cron and calendar slots come from cronsim, read in the spec's time zone. For five-field
expressions at fixed times it follows Debian cron across daylight-saving changes, which is what
cron users expect: a slot in the skipped hour (02:30 on the spring-forward night) runs once, at
the first minute that exists after it (03:00); a slot in the repeated hour (02:30 on the
fall-back night) runs once, at its first occurrence; "09:00 Europe/Prague" is 09:00 there in
winter and in summer. Expressions that step through hours (``*/15 * * * *``) count real time,
so the repeated hour has its four quarter-hours twice and the skipped one none.

Interval slots are ``anchor + k * interval`` (the anchor is ``start_at`` or the schedule's
creation), so every scheduler computes the same slots whatever its clock said when it looked.
Slots are epoch seconds; each is at most once in a schedule's life, which is what makes the
idempotency key of its run (``slot_key``) a guarantee.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from datetime import UTC, datetime

from cronsim import CronSim

from pyworkflow._schedules.specs import ScheduleSpec

__all__ = ["jitter_offset", "next_slot", "slot_key", "slots_between"]

# A hair below a whole second: "strictly after t" for cronsim, which works in whole seconds.
_EPSILON = 1e-6


def _next_cron(expression: str, spec: ScheduleSpec, after: float) -> float | None:
    """The first slot of ``expression`` strictly after ``after``, or None (none in 50 years)."""
    moment = datetime.fromtimestamp(after, spec.zone)
    try:
        for found in CronSim(expression, moment):
            slot = found.timestamp()
            # Debian's DST rule reads times as local wall clock: in a repeated hour, a time
            # already past in its second pass reads as its first, which is earlier. Go on.
            if slot > after:
                return slot
    except StopIteration:  # cronsim gives up after 50 years without a match
        return None
    return None


def next_slot(spec: ScheduleSpec, after: float, *, anchor: float) -> float | None:
    """The first slot strictly after ``after``, within ``start_at`` and ``end_at``; or None.

    Args:
        spec: the schedule's spec.
        after: epoch seconds.
        anchor: an interval schedule's first slot when it has no ``start_at`` (its creation).
    """
    if spec.start_ts is not None:
        after = max(after, spec.start_ts - _EPSILON)
    slot: float | None
    if spec.interval_seconds is not None:
        origin = spec.start_ts if spec.start_ts is not None else anchor
        step = spec.interval_seconds
        # Slots reach back before the anchor too (a backfill of the days before a schedule
        # was created); ``start_at``, when given, bounds them (``after`` is past it here).
        k = math.floor((after - origin) / step) + 1
        slot = origin + k * step
        if slot <= after:  # float rounding at the boundary
            slot += step
    else:
        found = [_next_cron(e, spec, after) for e in spec.cron_expressions()]
        slot = min((f for f in found if f is not None), default=None)
    if slot is None or (spec.end_ts is not None and slot > spec.end_ts):
        return None
    return slot


def slots_between(
    spec: ScheduleSpec, start: float, end: float, *, anchor: float, limit: int | None = None
) -> Iterator[float]:
    """The slots with ``start <= slot <= end``, in order (at most ``limit`` of them)."""
    count = 0
    slot = next_slot(spec, start - _EPSILON, anchor=anchor)
    while slot is not None and slot <= end and (limit is None or count < limit):
        yield slot
        count += 1
        slot = next_slot(spec, slot, anchor=anchor)


def jitter_offset(schedule_id: str, slot: float, jitter: float) -> float:
    """How long after ``slot`` its run starts: in ``[0, jitter)``, the same for every scheduler.

    Derived from the schedule and the slot (not random), so that two schedulers agree on when
    a slot is due and the slot's key stays its nominal time.
    """
    if jitter <= 0:
        return 0.0
    digest = hashlib.sha256(f"{schedule_id}\0{slot!r}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 * jitter


def slot_key(schedule_id: str, slot: float) -> str:
    """The idempotency key of the run of ``slot``: ``schedule:<id>:<slot, ISO 8601 UTC>``.

    Invariant: one slot, one run. Every scheduler derives the same key, so a slot fired twice
    (two schedulers, a restart, a clock jumping back) finds its run instead of starting one.
    """
    moment = datetime.fromtimestamp(slot, UTC).isoformat(timespec="microseconds")
    return f"schedule:{schedule_id}:{moment}"
