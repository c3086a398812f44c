"""``pyworkflow runs``: list runs, look at one, cancel or resume it, prune ended ones.

Every command works on the storage of ``--storage`` (``PYWORKFLOW_STORAGE``) and none executes a
run: ``runs cancel`` records a cancel request and ``runs resume`` reopens a failed run, and the
workers do the rest. ``runs prune`` deletes runs that ended long ago, with their events. Only
``runs resume`` needs ``--module``: like ``pyworkflow.resume`` it checks that the run's workflow
exists. ``runs children`` and ``runs chain`` (a run's child runs, its continue-as-new chain)
live in ``cli/families.py``. ``--json`` output keys are in ``cli/shapes.py``.

Example:
    .. code-block:: console

        $ pyworkflow runs list --status failed --since 1d
        $ pyworkflow runs show run_4b1e...
        $ pyworkflow runs children run_4b1e...
        $ pyworkflow runs cancel run_4b1e... --reason "customer left"
        $ pyworkflow runs prune --older-than 30d --dry-run
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from pyworkflow import retention
from pyworkflow._run_views import damage_of
from pyworkflow.cli.bridge import run_command
from pyworkflow.cli.families import chain, children
from pyworkflow.cli.inputs import parse_cli_duration, parse_moment
from pyworkflow.cli.options import json_option, modules_option, run_filter_options, storage_option
from pyworkflow.cli.session import require_run, session
from pyworkflow.cli.shapes import decode, emit, event_shape, hook_shape, iso, run_shape
from pyworkflow.cli.timeline import step_attempts, timeline
from pyworkflow.client import cancel_workflow, resume
from pyworkflow.events import TERMINAL_STATUSES, HookStatus, RunStatus
from pyworkflow.exceptions import CorruptRecordError
from pyworkflow.hooks import list_hooks
from pyworkflow.runtime import Runtime
from pyworkflow.storage.records import RunCursor, RunRecord

__all__ = ["runs"]

# Rows read per query while skipping runs newer than --until (filtered here, see _page).
_SCAN_BATCH = 500
# Children ``runs show`` lists; ``runs children`` pages through all of them.
_CHILDREN_SHOWN = 20

_run_id_argument = click.argument("run_id", metavar="RUN_ID")


@click.group()
def runs() -> None:
    """List workflow runs, inspect one, cancel or resume it."""


runs.add_command(children)
runs.add_command(chain)


@runs.command("list")
@run_filter_options
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Runs per page."
)
@click.option(
    "--before",
    default=None,
    metavar="RUN_ID",
    help="Page on: the runs created before this one (the cursor the previous page printed).",
)
@storage_option
@json_option
def list_runs(
    statuses: tuple[str, ...],
    workflow: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    before: str | None,
    storage: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first, a page at a time."""
    now = time.time()
    start = None if since is None else parse_moment("--since", since, now)
    end = None if until is None else parse_moment("--until", until, now)
    run_command(_list(storage, statuses, workflow, start, end, limit, before, as_json))


async def _list(
    storage: str | None,
    statuses: tuple[str, ...],
    workflow: str | None,
    since: float | None,
    until: float | None,
    limit: int,
    before: str | None,
    as_json: bool,
) -> None:
    async with session(storage) as runtime:
        cursor = None
        if before is not None:
            last = await require_run(runtime, before, "given as --before")
            cursor = RunCursor(last.created_at, last.run_id)
        wanted = [RunStatus(s) for s in statuses] or None
        page, more = await page_of_runs(runtime, wanted, workflow, since, until, limit, cursor)
    next_before = page[-1].run_id if more else None
    if as_json:
        emit({"runs": [run_shape(r) for r in page], "next_before": next_before})
    else:
        # rich takes ~90 ms to import: only output for people loads it.
        from pyworkflow.cli import tables

        tables.print_runs(tables.console(), page, next_before)


async def page_of_runs(
    runtime: Runtime,
    statuses: list[RunStatus] | None,
    workflow: str | None,
    since: float | None,
    until: float | None,
    limit: int,
    cursor: RunCursor | None,
) -> tuple[list[RunRecord], bool]:
    """Up to ``limit`` runs and whether older ones match too.

    Storage filters by status and workflow and pages by (created_at, run_id); it has no time
    filter yet, so the time range is applied here: newest first, ``since`` ends the scan at the
    first older run, ``until`` skips the newer ones (a scan over them, in batches).
    """
    found: list[RunRecord] = []
    batch = limit + 1 if until is None else max(limit + 1, _SCAN_BATCH)
    while True:
        rows = await runtime.storage.list_runs(
            statuses=statuses, workflow_name=workflow, limit=batch, before=cursor
        )
        for row in rows:
            if since is not None and row.created_at < since:
                return found, False
            if until is not None and row.created_at >= until:
                continue
            found.append(row)
            if len(found) > limit:
                return found[:limit], True
        if len(rows) < batch:
            return found, False
        cursor = RunCursor(rows[-1].created_at, rows[-1].run_id)


@runs.command("show")
@_run_id_argument
@storage_option
@json_option
def show(run_id: str, storage: str | None, as_json: bool) -> None:
    """Show a run: status, arguments, result or error, timeline, steps, children, hooks."""
    run_command(_show(run_id, storage, as_json))


async def _show(run_id: str, storage: str | None, as_json: bool) -> None:
    unreadable_log = None
    async with session(storage) as runtime:
        record = await require_run(runtime, run_id)
        try:
            events = await runtime.storage.load_events(run_id)
        except CorruptRecordError as exc:
            # Show the run all the same, and why its timeline is empty.
            events, unreadable_log = [], str(exc)
        children = await runtime.storage.list_runs(parent_run_id=run_id, limit=_CHILDREN_SHOWN + 1)
        waiting = await list_hooks(run_id=run_id, status=HookStatus.WAITING)
        codec = runtime.codec
        arguments = decode(codec, record.args)
        result = decode(codec, record.result) if record.status is RunStatus.COMPLETED else None
        entries = timeline(events, codec)
        attempts = step_attempts(events)
    more_children = len(children) > _CHILDREN_SHOWN
    children = children[:_CHILDREN_SHOWN]
    damage = "; ".join(d for d in (damage_of(record), unreadable_log) if d) or None
    if as_json:
        document: dict[str, Any] = run_shape(record)
        document.update(
            damage=damage,
            args=arguments,
            result=result,
            error=record.error,
            timeline=[e.shape() for e in entries],
            steps=[a.shape() for a in attempts],
            children=[run_shape(c) for c in children],
            more_children=more_children,
            waiting_hooks=[hook_shape(h) for h in waiting],
        )
        emit(document)
    else:
        from pyworkflow.cli import tables

        out = tables.console()
        tables.print_run(out, record, arguments, result, entries, attempts, damage)
        tables.print_run_family(out, record, children, more_children, waiting)


@runs.command("history")
@_run_id_argument
@storage_option
@json_option
def history(run_id: str, storage: str | None, as_json: bool) -> None:
    """Print a run's event log as stored, in order."""
    run_command(_history(run_id, storage, as_json))


async def _history(run_id: str, storage: str | None, as_json: bool) -> None:
    async with session(storage) as runtime:
        await require_run(runtime, run_id)
        events = await runtime.storage.load_events(run_id)
    if as_json:
        emit({"run_id": run_id, "events": [event_shape(e) for e in events]})
    else:
        from pyworkflow.cli import tables

        tables.print_history(tables.console(), events)


@runs.command("cancel")
@_run_id_argument
@click.option("--reason", default=None, help="Why; recorded with the cancellation.")
@storage_option
@json_option
def cancel(run_id: str, reason: str | None, storage: str | None, as_json: bool) -> None:
    """Ask a run to stop: it sees CancellationError at its next step, sleep or hook."""
    run_command(_cancel(run_id, reason, storage, as_json))


async def _cancel(run_id: str, reason: str | None, storage: str | None, as_json: bool) -> None:
    async with session(storage, writes=True) as runtime:
        await require_run(runtime, run_id)
        requested = await cancel_workflow(run_id, reason=reason)
        record = await require_run(runtime, run_id)
    status = record.status.value
    if as_json:
        emit({"run_id": run_id, "cancel_requested": requested, "status": status})
    elif requested:
        click.echo(
            f"cancellation of run {run_id} requested; it stops at its next step, sleep or "
            "hook once a worker runs it"
        )
    else:
        click.echo(f"run {run_id} has already ended ({status}); nothing to cancel")


@runs.command("resume")
@_run_id_argument
@modules_option
@storage_option
@json_option
def resume_run(run_id: str, modules: tuple[str, ...], storage: str | None, as_json: bool) -> None:
    """Continue a failed run: its failed steps run again with a fresh retry budget."""
    run_command(_resume(run_id, modules, storage, as_json))


async def _resume(
    run_id: str, modules: tuple[str, ...], storage: str | None, as_json: bool
) -> None:
    async with session(storage, modules, writes=True) as runtime:
        before = await require_run(runtime, run_id)
        await resume(run_id)
    resumed = before.status is RunStatus.FAILED
    status = RunStatus.PENDING.value if resumed else before.status.value
    if as_json:
        emit({"run_id": run_id, "resumed": resumed, "status": status})
    elif resumed:
        click.echo(f"run {run_id} resumed; a worker runs its failed steps again")
    else:
        click.echo(f"run {run_id} is {status}, not failed; nothing to resume")


@runs.command("prune")
@click.option(
    "--older-than",
    required=True,
    metavar="DURATION",
    help="Delete runs that ended longer ago than this: 30d, 12h, 1w2d ...",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=retention.DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Runs deleted per transaction.",
)
@click.option("--dry-run", is_flag=True, help="Count the runs that would go; delete nothing.")
@storage_option
@json_option
def prune(
    older_than: str, batch_size: int, dry_run: bool, storage: str | None, as_json: bool
) -> None:
    """Delete runs that ended (completed, failed, cancelled) long ago, with their events.

    Live runs (pending, running, suspended) are never deleted, however old. Workers can do the
    same every hour: `pyworkflow worker run --retention 30d`.
    """
    age = parse_cli_duration("--older-than", older_than)
    run_command(_prune(age, batch_size, dry_run, storage, as_json))


async def _prune(
    age: float, batch_size: int, dry_run: bool, storage: str | None, as_json: bool
) -> None:
    async with session(storage, writes=True) as runtime:
        ended_before = runtime.executor.now() - age
        if dry_run:
            count = await _count_ended(runtime, ended_before)
        else:
            # Progress on a terminal only: in a pipe or a cron log it would be noise.
            progress = _show_progress if sys.stderr.isatty() and not as_json else None
            count = await retention.delete_ended_runs(
                runtime.storage,
                ended_before=ended_before,
                batch_size=batch_size,
                on_progress=progress,
            )
            if progress is not None and count:
                click.echo(err=True)  # end the progress line
    before = iso(ended_before)
    if as_json:
        emit(
            {
                "ended_before": before,
                "dry_run": dry_run,
                "would_delete" if dry_run else "deleted": count,
            }
        )
    elif dry_run:
        click.echo(f"would delete {count} runs that ended before {before} (dry run: none deleted)")
    else:
        click.echo(f"deleted {count} runs that ended before {before}, with their events")


def _show_progress(deleted: int) -> None:
    click.echo(f"\rpruning: {deleted} runs deleted", nl=False, err=True)


async def _count_ended(runtime: Runtime, ended_before: float) -> int:
    """How many runs ``runs prune`` would delete: ended, and before ``ended_before``.

    Only runs created before the bound can have ended before it, so the scan starts there and
    walks older runs by keyset, a page at a time.
    """
    count = 0
    cursor = RunCursor(ended_before, "")
    while True:
        rows = await runtime.storage.list_runs(
            statuses=TERMINAL_STATUSES, limit=_SCAN_BATCH, before=cursor
        )
        count += sum(r.completed_at is not None and r.completed_at < ended_before for r in rows)
        if len(rows) < _SCAN_BATCH:
            return count
        cursor = RunCursor(rows[-1].created_at, rows[-1].run_id)
