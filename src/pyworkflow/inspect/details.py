"""One run in detail: its call and outcome decoded, its timeline, step attempts, children, hooks.

What a run's own page shows. Nothing here fails on what is stored: a value this process cannot
decode stays encoded (``Undecodable``), and a log that cannot be read leaves the timeline and
the attempts empty and says why in ``damage``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pyworkflow.events import HookStatus, RunStatus
from pyworkflow.exceptions import CorruptRecordError
from pyworkflow.hooks import HookInfo
from pyworkflow.inspect.attempts import StepAttempt, step_attempts
from pyworkflow.inspect.hooks import hook_json
from pyworkflow.inspect.runs import RunView, stored_run
from pyworkflow.inspect.spans import Mark, Span, spans
from pyworkflow.inspect.timeline import TimelineEntry, timeline_ends
from pyworkflow.inspect.values import decode, jsonable
from pyworkflow.serialization import Codec
from pyworkflow.storage import EventRecord, RunRecord, StepLease, Storage

__all__ = [
    "CHILDREN_SHOWN",
    "DecodedRun",
    "OfferedStep",
    "RunDetails",
    "get_decoded_run",
    "get_run_details",
]

CHILDREN_SHOWN = 20
"""Children a run's details hold, the newest; ``list_children`` pages through all of them."""


def _values(record: RunRecord, codec: Codec) -> tuple[Any, Any]:
    arguments = decode(codec, record.args)
    completed = record.status is RunStatus.COMPLETED
    return arguments, decode(codec, record.result) if completed else None


@dataclass(frozen=True, slots=True)
class DecodedRun:
    """A run with its call and result decoded.

    Attributes:
        run: the run.
        arguments: its ``{"args": [...], "kwargs": {...}}``, or ``Undecodable``.
        result: its result once completed (else None), or ``Undecodable``.
    """

    run: RunView
    arguments: Any
    result: Any

    def to_json(self) -> dict[str, Any]:
        """The run's keys (``RunView``) with ``args``, ``result`` and ``error``."""
        document = self.run.to_json()
        document.update(
            args=jsonable(self.arguments), result=jsonable(self.result), error=self.run.error
        )
        return document


@dataclass(frozen=True, slots=True)
class OfferedStep:
    """An attempt of a step handed to the workers of its queue (``@step(queue=...)``).

    Attributes:
        step_id: the step's id in its run.
        attempt: the attempt offered.
        queue: the queue whose workers execute it.
        executed_by: the worker executing it now (its lease live), or None: it waits for
            a worker of ``queue``.
    """

    step_id: str
    attempt: int
    queue: str
    executed_by: str | None

    @classmethod
    def of(cls, lease: StepLease, now: float) -> OfferedStep | None:
        """The offer a step lease row stands for, or None for a Celery step task's lease."""
        if lease.queue is None:
            return None
        live = lease.owner is not None and (lease.lease_expires_at or 0.0) > now
        return cls(lease.step_id, lease.attempt, lease.queue, lease.owner if live else None)

    def to_json(self) -> dict[str, Any]:
        """``step_id``, ``attempt``, ``queue``, ``executed_by``."""
        return {
            "step_id": self.step_id,
            "attempt": self.attempt,
            "queue": self.queue,
            "executed_by": self.executed_by,
        }


@dataclass(frozen=True, slots=True)
class RunDetails:
    """Everything a run's page shows.

    Attributes:
        run: the run.
        arguments: its decoded call, or ``Undecodable``.
        result: its decoded result once completed (else None), or ``Undecodable``.
        damage: what of the run cannot be read or shown (its row, its log), or None.
        timeline: its events, in order (empty when its log cannot be read); only the first
            and last ones when asked for with a ``timeline_limit`` (a jump in ``seq`` between
            them), ``events`` saying how many the log holds.
        steps: its step attempts, in the order they started.
        children: its newest child runs, at most ``CHILDREN_SHOWN``.
        more_children: True when it has more (``list_children`` pages through them all).
        waiting_hooks: the hooks it waits on, newest first.
        offered_steps: its steps handed to the workers of their queues, by ``step_id``.
        spans: its log as bars on a time axis (``spans``: step attempts, sleeps, hooks,
            children), in the order they started.
        marks: the moments between them: take-overs, resumes, cancel requests, its end.
        events: how many events its log holds.
    """

    run: RunView
    arguments: Any
    result: Any
    damage: str | None
    timeline: list[TimelineEntry]
    steps: list[StepAttempt]
    children: list[RunView]
    more_children: bool
    waiting_hooks: list[HookInfo]
    offered_steps: list[OfferedStep]
    spans: list[Span] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    events: int = 0

    def to_json(self) -> dict[str, Any]:
        """The run's keys (``RunView``, ``damage`` as here), then the rest.

        ``args``, ``result``, ``error``, ``timeline`` (``TimelineEntry``), ``steps``
        (``StepAttempt``), ``children`` (runs), ``more_children``, ``waiting_hooks`` (hooks),
        ``offered_steps`` (``OfferedStep``), ``spans`` (``Span``), ``marks`` (``Mark``),
        ``events`` (how many the log holds).
        """
        document = self.run.to_json()
        document.update(
            damage=self.damage,
            args=jsonable(self.arguments),
            result=jsonable(self.result),
            error=self.run.error,
            timeline=[e.to_json() for e in self.timeline],
            steps=[a.to_json() for a in self.steps],
            children=[c.to_json() for c in self.children],
            more_children=self.more_children,
            waiting_hooks=[hook_json(h) for h in self.waiting_hooks],
            offered_steps=[o.to_json() for o in self.offered_steps],
            spans=[s.to_json() for s in self.spans],
            marks=[m.to_json() for m in self.marks],
            events=self.events,
        )
        return document


async def get_decoded_run(storage: Storage, run_id: str, *, codec: Codec) -> DecodedRun:
    """The run with its call and result decoded (with ``codec``).

    Raises:
        RunNotFoundError: no such run.
    """
    record = await stored_run(storage, run_id)
    arguments, result = _values(record, codec)
    return DecodedRun(RunView.from_record(record), arguments, result)


async def get_run_details(
    storage: Storage, run_id: str, *, codec: Codec, timeline_limit: int | None = None
) -> RunDetails:
    """Everything a run's page shows (see ``RunDetails``).

    ``timeline_limit`` keeps that many entries of the timeline, the first and the last
    (``timeline_ends``): a page of a long run summarizes only what it shows. The step
    attempts, spans and marks always cover the whole log.

    Example:
        >>> details = await get_run_details(storage, run_id, codec=Codec())
        >>> [(a.step_id, a.attempt, a.outcome) for a in details.steps]
        [('charge#1', 1, 'retried'), ('charge#1', 2, 'completed')]

    Raises:
        RunNotFoundError: no such run.
    """
    record = await stored_run(storage, run_id)
    unreadable_log = None
    events: list[EventRecord]
    try:
        events = await storage.load_events(run_id)
    except CorruptRecordError as exc:
        # Show the run all the same, and why its timeline is empty.
        events, unreadable_log = [], str(exc)
    rows = await storage.list_runs(parent_run_id=run_id, limit=CHILDREN_SHOWN + 1)
    waiting = await storage.list_hooks(run_id=run_id, status=HookStatus.WAITING)
    now = time.time()
    offers = [OfferedStep.of(lease, now) for lease in await storage.list_step_leases(run_id)]
    run = RunView.from_record(record)
    arguments, result = _values(record, codec)
    attempts = step_attempts(events)
    bars, marks = spans(events, attempts)
    return RunDetails(
        run=run,
        arguments=arguments,
        result=result,
        damage="; ".join(d for d in (run.damage, unreadable_log) if d) or None,
        timeline=timeline_ends(events, codec, timeline_limit),
        events=len(events),
        steps=attempts,
        spans=bars,
        marks=marks,
        children=[RunView.from_record(r) for r in rows[:CHILDREN_SHOWN]],
        more_children=len(rows) > CHILDREN_SHOWN,
        waiting_hooks=[HookInfo.from_record(h) for h in waiting],
        offered_steps=[offer for offer in offers if offer is not None],
    )
