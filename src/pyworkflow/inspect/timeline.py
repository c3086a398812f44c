"""A run's timeline: its events in order, each with the time since the previous one and a summary.

Derived from the log alone (see ``summaries``), so it reads the same in a process without the
run's workflow code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pyworkflow.exceptions import InputError
from pyworkflow.inspect.summaries import summarize
from pyworkflow.inspect.values import iso
from pyworkflow.serialization import Codec
from pyworkflow.storage import EventRecord

__all__ = ["TimelineEntry", "timeline", "timeline_ends"]


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One event of a run's timeline.

    Attributes:
        seq: its place in the log (1, 2, ...).
        type: its event type's value, e.g. ``"step_completed"``.
        timestamp: when it was logged, epoch seconds.
        since_previous: seconds since the event before it (0 for the first).
        since_start: seconds since the run's first event.
        summary: the one line a person reads, e.g. ``"charge#1 -> {"ok": true}"``.
    """

    seq: int
    type: str
    timestamp: float
    since_previous: float
    since_start: float
    summary: str

    def to_json(self) -> dict[str, Any]:
        """``seq``, ``type``, ``timestamp`` (ISO), ``since_previous``, ``since_start``, ``summary``.

        The two durations are float seconds, rounded to microseconds.
        """
        return {
            "seq": self.seq,
            "type": self.type,
            "timestamp": iso(self.timestamp),
            "since_previous": round(self.since_previous, 6),
            "since_start": round(self.since_start, 6),
            "summary": self.summary,
        }


def timeline(events: Sequence[EventRecord], codec: Codec) -> list[TimelineEntry]:
    """The events in order, each with the time since the previous one and since the start.

    Example:
        >>> history = await get_history(storage, run_id)
        >>> [entry.summary for entry in timeline(history.events, Codec())][:2]
        ['checkout(cart_id="c-1")', 'charge#1 attempt 1']
    """
    return timeline_ends(events, codec, None)


def timeline_ends(
    events: Sequence[EventRecord], codec: Codec, limit: int | None
) -> list[TimelineEntry]:
    """The timeline of the first and last events only, ``limit`` in all (None: every event).

    Only the events kept are summarized (decoding their values): a page of a long run shows
    its start and its end without paying for the middle. The times since the previous event
    are those of the whole log; a reader sees the cut as a jump in ``seq``.

    Example:
        >>> [e.seq for e in timeline_ends(history.events, Codec(), 4)]  # a log of 1,000
        [1, 2, 999, 1000]
    """
    if limit is not None and (isinstance(limit, bool) or limit < 0):
        raise InputError(f"limit must be 0 or more, not {limit!r}")
    kept: Iterable[int] = range(len(events))
    if limit is not None and len(events) > limit:
        head = (limit + 1) // 2
        kept = [*range(head), *range(len(events) - (limit - head), len(events))]
    start = events[0].created_at if events else 0.0
    entries = []
    for i in kept:
        event = events[i]
        previous = events[i - 1].created_at if i else start
        entries.append(
            TimelineEntry(
                seq=event.seq,
                type=event.type.value,
                timestamp=event.created_at,
                since_previous=event.created_at - previous,
                since_start=event.created_at - start,
                summary=summarize(event, codec),
            )
        )
    return entries
