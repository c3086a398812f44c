r"""``pyworkflow schedules``: list, show, create, update, pause, resume, trigger, backfill, delete.

The management commands call ``pyworkflow.schedules`` (the same API an application calls), so
what they check and write is what the API checks and writes: a bad cron expression, interval or
time zone exits 2 naming it, and nothing is stored. ``list`` and ``show`` render the read model
(``pyworkflow.inspect.schedules``). Commands that name a workflow (``create``, ``update`` with
arguments, ``trigger``, ``backfill``) need its module (``--module``): the run is checked against
its signature. The schedules fire in the workers (``pyworkflow worker run``), not here.

Example:
    .. code-block:: console

        $ pyworkflow schedules create daily_report --cron "0 9 * * 1-5" --id reports \
              --timezone Europe/Prague -m myapp.workflows
        $ pyworkflow schedules list --status active
        $ pyworkflow schedules backfill reports --start 2026-01-01 --end 2026-01-31 \
              -m myapp.workflows
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import click

from pyworkflow import schedules as api
from pyworkflow.cli.bridge import fail, run_command
from pyworkflow.cli.json_output import emit
from pyworkflow.cli.options import json_option, modules_option, storage_option
from pyworkflow.cli.session import session
from pyworkflow.events import ScheduleStatus
from pyworkflow.exceptions import InvalidScheduleError, ScheduleNotFoundError
from pyworkflow.inspect import ScheduleView, get_schedule, list_schedules

__all__ = ["schedules"]

_POLICIES = [p.value for p in api.OverlapPolicy]


@click.group()
def schedules() -> None:
    """Manage schedules: workflows started by cron, interval or calendar slots."""


def _render(views: list[ScheduleView], as_json: bool, *, one: bool = False) -> None:
    if as_json:
        emit(views[0].to_json() if one else {"schedules": [v.to_json() for v in views]})
        return
    # rich takes ~90 ms to import: only output for people loads it.
    from pyworkflow.cli import schedule_tables, tables

    if one:
        schedule_tables.print_schedule(tables.console(), views[0])
    else:
        schedule_tables.print_schedules(tables.console(), views)


@schedules.command("list")
@click.option("--workflow", default=None, metavar="NAME", help="Only this workflow's schedules.")
@click.option(
    "--status",
    type=click.Choice([s.value for s in ScheduleStatus]),
    default=None,
    help="Only schedules in this status (default: all but deleted ones).",
)
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True)
@storage_option
@json_option
def list_command(
    workflow: str | None, status: str | None, limit: int, storage: str | None, as_json: bool
) -> None:
    """List schedules by id: what they run, when, and what they started."""

    async def body() -> None:
        wanted = None if status is None else ScheduleStatus(status)
        async with session(storage) as runtime:
            found = await list_schedules(
                runtime.storage, status=wanted, workflow=workflow, limit=limit
            )
        _render(found, as_json)

    run_command(body())


@schedules.command("show")
@click.argument("schedule_id")
@storage_option
@json_option
def show_command(schedule_id: str, storage: str | None, as_json: bool) -> None:
    """Show one schedule: its spec, policy, next slot and the runs it started."""

    async def body() -> None:
        async with session(storage) as runtime:
            view = await _found(get_schedule(runtime.storage, schedule_id), runtime.storage.url)
        _render([view], as_json, one=True)

    run_command(body())


async def _found(lookup: Awaitable[ScheduleView], where: str) -> ScheduleView:
    try:
        return await lookup
    except ScheduleNotFoundError as exc:
        fail(f"{exc} in {where}; `pyworkflow schedules list` shows the schedules there")


def _spec(
    cron: str | None,
    interval: str | None,
    timezone: str | None,
    start: str | None,
    end: str | None,
    jitter: str | None,
) -> api.ScheduleSpec:
    """The ScheduleSpec the options give; a bad value exits 2 naming it."""
    try:
        return api.ScheduleSpec(
            cron=cron,
            interval=interval,
            timezone=timezone or "UTC",
            start_at=None if start is None else _moment("--start-at", start),
            end_at=None if end is None else _moment("--end-at", end),
            jitter=jitter,
        )
    except InvalidScheduleError as exc:
        fail(str(exc))


def _moment(option: str, text: str) -> datetime:
    """An ISO 8601 date(-time); without an offset it is UTC."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"{option} {text!r} is not an ISO date-time such as 2026-01-31T09:00:00Z")
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _spec_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--cron", default=None, help='A cron expression, e.g. "0 9 * * 1-5".'),
        click.option("--interval", default=None, help="A duration between slots, e.g. 5m."),
        click.option("--timezone", default=None, help="IANA zone of cron slots (default UTC)."),
        click.option("--start-at", "start", default=None, help="No slot before (ISO, UTC)."),
        click.option("--end-at", "end", default=None, help="No slot after (ISO, UTC)."),
        click.option("--jitter", default=None, help="Start up to this long after each slot."),
        click.option("--overlap", type=click.Choice(_POLICIES), default=None, help="Policy."),
        click.option(
            "--catchup-window",
            default=None,
            help="After downtime, slots younger than this start (default: the latest only).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@schedules.command("create")
@click.argument("workflow")
@_spec_options
@click.option(
    "--id",
    "--schedule-id",
    "schedule_id",
    default=None,
    help="The schedule's id (default: random).",
)
@click.option("--args-json", default=None, metavar="JSON", help="The runs' arguments as JSON.")
@modules_option
@storage_option
@json_option
def create_command(
    workflow: str,
    cron: str | None,
    interval: str | None,
    timezone: str | None,
    start: str | None,
    end: str | None,
    jitter: str | None,
    overlap: str | None,
    catchup_window: str | None,
    schedule_id: str | None,
    args_json: str | None,
    modules: tuple[str, ...],
    storage: str | None,
    as_json: bool,
) -> None:
    """Create a schedule that starts WORKFLOW at each slot (workers fire it)."""
    spec = _spec(cron, interval, timezone, start, end, jitter)

    async def body() -> None:
        from pyworkflow import registry
        from pyworkflow.cli.inputs import workflow_arguments

        async with session(storage, modules, writes=True, create=True) as runtime:
            args, kwargs = workflow_arguments(registry.get_workflow(workflow), [], args_json)
            created = await api.create_schedule(
                workflow,
                spec,
                args=args,
                kwargs=kwargs,
                overlap_policy=overlap or api.OverlapPolicy.SKIP,
                schedule_id=schedule_id,
                catchup_window=catchup_window,
            )
            view = await get_schedule(runtime.storage, created.schedule_id)
        _render([view], as_json, one=True)

    run_command(body())


@schedules.command("update")
@click.argument("schedule_id")
@_spec_options
@modules_option
@storage_option
@json_option
def update_command(
    schedule_id: str,
    cron: str | None,
    interval: str | None,
    timezone: str | None,
    start: str | None,
    end: str | None,
    jitter: str | None,
    overlap: str | None,
    catchup_window: str | None,
    modules: tuple[str, ...],
    storage: str | None,
    as_json: bool,
) -> None:
    """Change a schedule: a new --cron or --interval counts its slots from now."""
    timing = any(v is not None for v in (cron, interval, timezone, start, end, jitter))
    spec = _spec(cron, interval, timezone, start, end, jitter) if timing else None
    changes: dict[str, Any] = {"spec": spec, "overlap_policy": overlap}
    if catchup_window is not None:
        changes["catchup_window"] = catchup_window
    _manage(schedule_id, storage, as_json, lambda: api.update_schedule(schedule_id, **changes))


def _manage(
    schedule_id: str,
    storage: str | None,
    as_json: bool,
    action: Callable[[], Awaitable[Any]],
    modules: tuple[str, ...] = (),
    said: Callable[[Any], str] | None = None,
) -> None:
    """Run one management call in a writing session and show the schedule afterwards."""

    async def body() -> None:
        async with session(storage, modules, writes=True) as runtime:
            try:
                outcome = await action()
            except ScheduleNotFoundError as exc:
                fail(f"{exc} in {runtime.storage.url}; `pyworkflow schedules list` shows them")
            view = await get_schedule(runtime.storage, schedule_id)
        if said is not None and not as_json:
            click.echo(said(outcome))
        if said is not None and as_json:
            emit({"schedule": view.to_json(), "result": outcome})
        else:
            _render([view], as_json, one=True)

    run_command(body())


@schedules.command("pause")
@click.argument("schedule_id")
@storage_option
@json_option
def pause_command(schedule_id: str, storage: str | None, as_json: bool) -> None:
    """Stop a schedule starting runs (the slots meanwhile are not made up)."""
    _manage(schedule_id, storage, as_json, lambda: api.pause_schedule(schedule_id))


@schedules.command("resume")
@click.argument("schedule_id")
@storage_option
@json_option
def resume_command(schedule_id: str, storage: str | None, as_json: bool) -> None:
    """Start a paused schedule again, from its next slot."""
    _manage(schedule_id, storage, as_json, lambda: api.resume_schedule(schedule_id))


@schedules.command("delete")
@click.argument("schedule_id")
@click.option("--force", is_flag=True, help="Accepted: deleting asks for no confirmation.")
@storage_option
@json_option
def delete_command(schedule_id: str, force: bool, storage: str | None, as_json: bool) -> None:
    """Delete a schedule (its runs go on; the record stays, shown by list --status deleted)."""
    _manage(schedule_id, storage, as_json, lambda: api.delete_schedule(schedule_id))


@schedules.command("trigger")
@click.argument("schedule_id")
@modules_option
@storage_option
@json_option
def trigger_command(
    schedule_id: str, modules: tuple[str, ...], storage: str | None, as_json: bool
) -> None:
    """Start a run of the schedule now, outside its slots; a worker executes it."""
    _manage(
        schedule_id,
        storage,
        as_json,
        lambda: api.trigger_schedule(schedule_id),
        modules,
        said=lambda run_id: f"started run {run_id}",
    )


@schedules.command("backfill")
@click.argument("schedule_id")
@click.option("--start", "start", required=True, help="First slot time (ISO; UTC without offset).")
@click.option("--end", "end", required=True, help="Last slot time (ISO; UTC without offset).")
@modules_option
@storage_option
@json_option
def backfill_command(
    schedule_id: str,
    start: str,
    end: str,
    modules: tuple[str, ...],
    storage: str | None,
    as_json: bool,
) -> None:
    """Start a run for every slot from --start to --end (a slot that has its run keeps it)."""
    first, last = _moment("--start", start), _moment("--end", end)
    _manage(
        schedule_id,
        storage,
        as_json,
        lambda: api.backfill_schedule(schedule_id, first, last),
        modules,
        said=lambda run_ids: f"{len(run_ids)} slots backfilled: " + " ".join(run_ids),
    )
