"""Counts and durations of runs: runs per status, and per workflow over the last hour and day.

Counts come from storage's grouped counts (``Storage.count_runs``, ``count_workflow_runs``).
Durations (creation to end) of a workflow's completed runs are read newest first, at most
``DURATION_SAMPLE`` of them over the window, and their percentiles taken from those: a page
showing them stays fast however many runs a day brings, and says how many runs the figures are
from (``sampled``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pyworkflow.events import RunStatus
from pyworkflow.inspect.values import iso
from pyworkflow.storage import RunCursor, Storage

__all__ = [
    "DURATION_SAMPLE",
    "StatusCounts",
    "WorkflowStats",
    "percentile",
    "status_counts",
    "workflow_stats",
    "workflows_status_counts",
]

DURATION_SAMPLE = 1000
"""At most this many of a workflow's newest completed runs give its duration percentiles."""

_HOUR, _DAY = 3600.0, 86400.0
_PAGE = 500


@dataclass(frozen=True, slots=True)
class StatusCounts:
    """How many runs are in each status.

    Attributes:
        counts: runs per status value, every status present (0 when none).
        since: counted only runs created at or after this (epoch seconds), or None: all runs.
    """

    counts: dict[str, int]
    since: float | None = None

    @property
    def total(self) -> int:
        """Every run counted."""
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        """``{"counts": {status: n, ...}, "total": n, "since": ISO or null}``."""
        return {"counts": dict(self.counts), "total": self.total, "since": iso(self.since)}


@dataclass(frozen=True, slots=True)
class WorkflowStats:
    """One workflow's runs as its summary shows them.

    Attributes:
        workflow: its name.
        total: its runs stored, in any status.
        last_hour / last_day: its runs per status value, created in the last hour / day.
        success_rate: completed / (completed + failed + cancelled) over the last day, or None
            when none of its runs ended in that time.
        p50 / p95 / p99: seconds from creation to completion of its runs completed in the last
            day (at most ``DURATION_SAMPLE`` of the newest), or None without any.
        sampled: how many runs the percentiles are taken from.
        registered: True when the workflow is registered in this process (``--module``).
    """

    workflow: str
    total: int
    last_hour: dict[str, int]
    last_day: dict[str, int]
    success_rate: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    sampled: int
    registered: bool = False
    durations: list[float] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        """``workflow``, ``total``, ``last_hour``, ``last_day``, ``success_rate``, ...

        ... ``p50``, ``p95``, ``p99`` (float seconds or null), ``sampled``, ``registered``.
        """
        return {
            "workflow": self.workflow,
            "total": self.total,
            "last_hour": dict(self.last_hour),
            "last_day": dict(self.last_day),
            "success_rate": self.success_rate,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "sampled": self.sampled,
            "registered": self.registered,
        }


def _every_status(pairs: Iterable[tuple[RunStatus, int]]) -> dict[str, int]:
    counts = {s.value: 0 for s in RunStatus}
    for status, n in pairs:
        counts[status.value] += n
    return counts


async def status_counts(
    storage: Storage, *, workflow: str | None = None, since: float | None = None
) -> StatusCounts:
    """Runs per status, of one workflow or all, created at or after ``since`` (None: all).

    Example:
        >>> (await status_counts(storage)).counts["failed"]
        3
    """
    found = await storage.count_runs(workflow_name=workflow, since=since)
    return StatusCounts(_every_status(found.items()), since)


async def workflows_status_counts(
    storage: Storage, workflows: Iterable[str]
) -> dict[str, StatusCounts]:
    """Runs per status of each of ``workflows`` (all their runs), by name.

    Each workflow's count reads only its own entries of an index (``Storage.count_runs``), so
    the whole costs about one count of every run, however many workflows there are.

    Example:
        >>> (await workflows_status_counts(storage, ["checkout"]))["checkout"].counts["failed"]
        3
    """
    found = {}
    for name in sorted(set(workflows)):
        found[name] = StatusCounts(
            _every_status((await storage.count_runs(workflow_name=name)).items())
        )
    return found


def percentile(ordered: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of sorted values (``fraction`` 0.95 for p95); None if empty.

    Example:
        >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5)
        2.0
    """
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


async def _durations(storage: Storage, workflow: str, since: float) -> list[float]:
    """Creation-to-completion seconds of the newest completed runs created after ``since``."""
    found: list[float] = []
    cursor: RunCursor | None = None
    while len(found) < DURATION_SAMPLE:
        rows = await storage.list_runs(
            statuses=(RunStatus.COMPLETED,), workflow_name=workflow, limit=_PAGE, before=cursor
        )
        for row in rows:
            if row.created_at < since:
                return found
            if row.completed_at is not None:
                found.append(row.completed_at - row.created_at)
        if len(rows) < _PAGE:
            return found
        cursor = RunCursor(rows[-1].created_at, rows[-1].run_id)
    return found[:DURATION_SAMPLE]


async def workflow_stats(
    storage: Storage, *, registered: Iterable[str] = (), now: float | None = None
) -> list[WorkflowStats]:
    """Every workflow seen in storage (and those ``registered`` here), by name.

    Example:
        >>> [(s.workflow, s.success_rate, s.p95) for s in await workflow_stats(storage)]
        [('checkout', 0.98, 1.84)]

    Args:
        storage: an opened storage.
        registered: names of the workflows registered in this process; listed even without runs.
        now: the time the windows end at (default: the wall clock).
    """
    now = time.time() if now is None else now
    totals = await storage.count_workflow_runs()
    known = set(registered)
    found = []
    for name in sorted(set(totals) | known):
        day = await storage.count_runs(workflow_name=name, since=now - _DAY)
        hour = await storage.count_runs(workflow_name=name, since=now - _HOUR)
        last_day = _every_status(day.items())
        ended = sum(last_day[s] for s in ("completed", "failed", "cancelled"))
        durations = sorted(await _durations(storage, name, now - _DAY))
        found.append(
            WorkflowStats(
                workflow=name,
                total=totals.get(name, 0),
                last_hour=_every_status(hour.items()),
                last_day=last_day,
                success_rate=None if ended == 0 else last_day["completed"] / ended,
                p50=percentile(durations, 0.50),
                p95=percentile(durations, 0.95),
                p99=percentile(durations, 0.99),
                sampled=len(durations),
                registered=name in known,
                durations=durations,
            )
        )
    return found
