"""``pyworkflow runs``: list runs, look at one, cancel or resume it, prune ended ones.

Every command works on the storage of ``--storage`` (``PYWORKFLOW_STORAGE``) and none executes a
run: ``runs cancel`` records a cancel request and ``runs resume`` reopens a failed run, and the
workers do the rest. ``runs prune`` deletes runs that ended long ago, with their events. Only
``runs resume`` needs ``--module``: like ``pyworkflow.resume`` it checks that the run's workflow
exists. ``runs children`` and ``runs chain`` (a run's child runs, its continue-as-new chain)
live in ``cli/families.py``. What they show comes from the read model (``pyworkflow.inspect``);
``--json`` output keys are in ``cli/json_output.py``.

Example:
    .. code-block:: console

        $ pyworkflow runs list --status failed --since 1d
        $ pyworkflow runs show run_4b1e...
        $ pyworkflow runs children run_4b1e...
        $ pyworkflow runs cancel run_4b1e... --reason "customer left"
        $ pyworkflow runs prune --older-than 30d --dry-run
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time

import click

from pyworkflow import retention
from pyworkflow._backoff import Backoff
from pyworkflow.cli.bridge import run_command
from pyworkflow.cli.families import chain, children
from pyworkflow.cli.inputs import parse_cli_duration, parse_moment
from pyworkflow.cli.json_output import emit
from pyworkflow.cli.options import (
    SECONDS,
    json_option,
    modules_option,
    run_filter_options,
    storage_option,
)
from pyworkflow.cli.session import missing_runs_explained, session
from pyworkflow.cli.streams import print_stream_run
from pyworkflow.client import cancel_workflow, resume
from pyworkflow.events import RunStatus
from pyworkflow.inspect import (
    RunFilter,
    count_ended_runs,
    get_history,
    get_run,
    get_run_details,
    iso,
    list_runs,
)
from pyworkflow.inspect.streams import stream_of_run
from pyworkflow.storage import Storage

__all__ = ["runs"]

_run_id_argument = click.argument("run_id", metavar="RUN_ID")


@click.group()
def runs() -> None:
    """List workflow runs, inspect one, cancel or resume it."""


runs.add_command(children)
runs.add_command(chain)


@runs.command("list")
@run_filter_options
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="TAG",
    help="Only runs carrying this tag (@workflow(tags=...)); repeatable: every one given.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Runs per page."
)
@click.option(
    "--before",
    default=None,
    metavar="RUN_ID",
    help="Page on: the runs created before this one (the cursor the previous page printed).",
)
@click.option(
    "--schedule", default=None, metavar="SCHEDULE_ID", help="Only runs this schedule started."
)
@storage_option
@json_option
def list_command(
    statuses: tuple[str, ...],
    workflow: str | None,
    since: str | None,
    until: str | None,
    tags: tuple[str, ...],
    limit: int,
    before: str | None,
    schedule: str | None,
    storage: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first, a page at a time."""
    now = time.time()
    start = None if since is None else parse_moment("--since", since, now)
    end = None if until is None else parse_moment("--until", until, now)
    wanted = RunFilter(
        statuses=tuple(RunStatus(s) for s in statuses),
        workflow=workflow,
        since=start,
        until=end,
        schedule=schedule,
        tags=tags,
    )
    run_command(_list(storage, wanted, limit, before, as_json))


async def _list(
    storage: str | None, wanted: RunFilter, limit: int, before: str | None, as_json: bool
) -> None:
    async with session(storage) as runtime:
        notes = {} if before is None else {before: "given as --before"}
        with missing_runs_explained(runtime, notes):
            page = await list_runs(runtime.storage, wanted, limit=limit, before=before)
    if as_json:
        emit(page.to_json())
    else:
        # rich takes ~90 ms to import: only output for people loads it.
        from pyworkflow.cli import tables

        tables.print_runs(tables.console(), page)


@runs.command("show")
@_run_id_argument
@storage_option
@json_option
def show(run_id: str, storage: str | None, as_json: bool) -> None:
    """Show a run: status, arguments, result or error, timeline, steps, children, hooks."""
    run_command(_show(run_id, storage, as_json))


async def _show(run_id: str, storage: str | None, as_json: bool) -> None:
    async with session(storage) as runtime:
        with missing_runs_explained(runtime):
            details = await get_run_details(runtime.storage, run_id, codec=runtime.codec)
            stream = await stream_of_run(
                runtime.storage, details.run.workflow, details.arguments, codec=runtime.codec
            )
    if as_json:
        document = details.to_json()
        if stream is not None:
            document["stream_run"] = stream.to_json()
        emit(document)
    else:
        from pyworkflow.cli import tables

        out = tables.console()
        tables.print_run(out, details)
        tables.print_run_family(out, details)
        if stream is not None:
            print_stream_run(stream)


@runs.command("history")
@_run_id_argument
@click.option(
    "--filter",
    "type_filter",
    default=None,
    metavar="TEXT",
    help="Only events whose type contains TEXT, any case (step_completed, failed, cancel).",
)
@storage_option
@json_option
def history(run_id: str, type_filter: str | None, storage: str | None, as_json: bool) -> None:
    """Print a run's event log as stored, in order."""
    run_command(_history(run_id, type_filter, storage, as_json))


async def _history(
    run_id: str, type_filter: str | None, storage: str | None, as_json: bool
) -> None:
    async with session(storage) as runtime:
        with missing_runs_explained(runtime):
            history = await get_history(runtime.storage, run_id)
    if type_filter:
        wanted = type_filter.lower()
        history = dataclasses.replace(
            history, events=[e for e in history.events if wanted in e.type.value]
        )
    if as_json:
        emit(history.to_json())
    else:
        from pyworkflow.cli import tables

        tables.print_history(tables.console(), history.events)


@runs.command("cancel")
@_run_id_argument
@click.option("--reason", default=None, help="Why; recorded with the cancellation.")
@click.option(
    "--wait/--no-wait",
    default=False,
    help="Wait until the run has ended (a worker must run it), then print how it ended.",
)
@click.option(
    "--timeout",
    type=SECONDS,
    default=None,
    help="With --wait: give up after this many seconds (exit 1).",
)
@storage_option
@json_option
def cancel(
    run_id: str,
    reason: str | None,
    wait: bool,
    timeout: float | None,
    storage: str | None,
    as_json: bool,
) -> None:
    """Ask a run to stop: it sees CancellationError at its next step, sleep or hook."""
    sys.exit(run_command(_cancel(run_id, reason, wait, timeout, storage, as_json)))


async def _cancel(
    run_id: str,
    reason: str | None,
    wait: bool,
    limit: float | None,
    storage: str | None,
    as_json: bool,
) -> int:
    async with session(storage, writes=True) as runtime:
        with missing_runs_explained(runtime):
            requested = await cancel_workflow(run_id, reason=reason)
            status = (await get_run(runtime.storage, run_id)).status.value
            if wait and requested:
                ended = await _until_ended(runtime.storage, run_id, limit)
                if ended is None:
                    click.echo(f"run {run_id} has not ended after {limit}s", err=True)
                    return 1
                status = ended
    if as_json:
        emit({"run_id": run_id, "cancel_requested": requested, "status": status})
    elif wait and requested:
        click.echo(f"run {run_id} {status}")
    elif requested:
        click.echo(
            f"cancellation of run {run_id} requested; it stops at its next step, sleep or "
            "hook once a worker runs it"
        )
    else:
        click.echo(f"run {run_id} has already ended ({status}); nothing to cancel")
    return 0


async def _until_ended(storage: Storage, run_id: str, limit: float | None) -> str | None:
    """The run's status once it has ended; None when ``limit`` seconds passed first."""
    deadline = None if limit is None else time.monotonic() + limit
    pauses = Backoff(0.05, 1.0)
    while True:
        status = (await get_run(storage, run_id)).status
        if status.is_terminal:
            return status.value
        if deadline is not None and time.monotonic() >= deadline:
            return None
        await asyncio.sleep(pauses.next())


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
        with missing_runs_explained(runtime):
            before = await get_run(runtime.storage, run_id)
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
            count = await count_ended_runs(runtime.storage, ended_before=ended_before)
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


# The names the pyworkflow documentation uses for them.
runs.add_command(show, "status")
runs.add_command(history, "logs")
