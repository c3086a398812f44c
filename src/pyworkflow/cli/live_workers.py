"""``pyworkflow worker list|status|queues``: the live workers of a storage and what they hold.

Every process that executes runs announces itself in storage, with a lock that dies with the
process (``_engine/presence.py``), so any process can see which are alive now. ``list``
(``status`` is the same, the pyworkflow documentation's name) shows each with the runs it
holds; ``queues`` shows, per queue, the runs held by a worker, those due and waiting for one,
and those waiting for a timer, a hook or a child. Both render ``pyworkflow.inspect.workers``
and write nothing.
"""

from __future__ import annotations

import click

from pyworkflow.cli.bridge import run_command
from pyworkflow.cli.json_output import emit
from pyworkflow.cli.options import json_option, storage_option
from pyworkflow.cli.session import session
from pyworkflow.inspect import live_workers, queue_views

__all__ = ["list_command", "queues_command"]


@click.command("list")
@storage_option
@json_option
def list_command(storage: str | None, as_json: bool) -> None:
    """List the workers alive on this storage and how many runs each holds."""
    run_command(_list(storage, as_json))


async def _list(storage: str | None, as_json: bool) -> None:
    async with session(storage) as runtime:
        workers = await live_workers(runtime.storage)
    if as_json:
        emit({"workers": [w.to_json() for w in workers]})
        return
    if not workers:
        click.echo("no live worker on this storage (start one: pyworkflow worker run ...)")
    for w in workers:
        row = w.to_json()
        click.echo(
            f"{w.owner}  host {w.host}  pid {w.pid}  since {row['started_at'] or '?'}  "
            f"holds {w.runs_held} run(s)"
        )


@click.command("queues")
@storage_option
@json_option
def queues_command(storage: str | None, as_json: bool) -> None:
    """Per queue: the unfinished runs held by a worker, and those due but held by none."""
    run_command(_queues(storage, as_json))


async def _queues(storage: str | None, as_json: bool) -> None:
    async with session(storage) as runtime:
        queues = await queue_views(runtime.storage)
    if as_json:
        emit({"queues": [q.to_json() for q in queues]})
        return
    if not queues:
        click.echo("no unfinished run on this storage")
    for q in queues:
        click.echo(
            f"{q.queue}: {q.held} held by a worker, {q.waiting_for_worker} due and waiting "
            f"for one, {q.later} waiting for a timer, hook or child"
        )
