"""How ``pyworkflow schedules list|show`` print for people: a table, and one schedule's fields."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pyworkflow.inspect import ScheduleView, format_duration, format_time

__all__ = ["print_schedule", "print_schedules"]

_STYLES = {"active": "green", "paused": "yellow", "deleted": "dim"}


def _status(view: ScheduleView) -> Text:
    return Text(view.status.value, style=_STYLES.get(view.status.value, ""))


def print_schedules(out: Console, views: Sequence[ScheduleView]) -> None:
    """``schedules list``: one row per schedule, by id."""
    if not views:
        out.print("no schedules match")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in (
        "SCHEDULE ID",
        "WORKFLOW",
        "STATUS",
        "WHEN",
        "NEXT RUN (UTC)",
        "RUNS",
        "SKIPPED",
    ):
        table.add_column(column, no_wrap=column == "SCHEDULE ID")
    for v in views:
        table.add_row(
            v.schedule_id,
            v.workflow,
            _status(v),
            v.describes,
            format_time(v.next_run_at),
            str(v.total_runs),
            str(v.skipped_runs),
        )
    out.print(table)


def print_schedule(out: Console, view: ScheduleView) -> None:
    """``schedules show``: every field of one schedule, then its runs counted by status."""
    window = "latest missed slot only" if view.catchup_window is None else None
    rows = [
        ("Schedule", Text(view.schedule_id)),
        ("Workflow", Text(view.workflow)),
        ("Status", _status(view)),
        ("When", Text(view.describes)),
        ("Overlap policy", Text(view.overlap_policy)),
        ("Catch-up", Text(window or format_duration(view.catchup_window or 0.0))),
        ("Next run (UTC)", Text(format_time(view.next_run_at))),
        ("Last run (UTC)", Text(format_time(view.last_run_at))),
        ("Last run id", Text(view.last_run_id or "-")),
        ("Runs started", Text(str(view.total_runs))),
        ("Slots skipped", Text(str(view.skipped_runs))),
        ("Slots waiting", Text(str(view.buffered_runs))),
        ("Created (UTC)", Text(format_time(view.created_at))),
    ]
    counts = ", ".join(f"{n} {status}" for status, n in view.runs_by_status.items())
    rows.append(("Stored runs", Text(counts or "none")))
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
