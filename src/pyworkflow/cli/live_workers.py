"""``pyworkflow worker list|status|queues``: the live workers of a storage and what they hold.

Every process that executes runs announces itself in storage (the ``owners`` rows, with a lock
that dies with the process: ``_engine/presence.py``), so any process can see which are alive
now. ``list`` (``status`` is the same, the pyworkflow documentation's name) shows each with
the runs it holds; ``queues`` shows, per queue, the runs held by a worker and the runs due
and waiting for one. Neither writes anything.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import click

from pyworkflow.cli.bridge import run_command
from pyworkflow.cli.json_output import emit
from pyworkflow.cli.options import json_option, storage_option
from pyworkflow.cli.session import session
from pyworkflow.events import RunStatus
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import OwnerRecord, RunCursor, RunRecord

__all__ = ["list_command", "queues_command"]

_UNFINISHED = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.SUSPENDED)
_SCAN = 1000


@click.command("list")
@storage_option
@json_option
def list_command(storage: str | None, as_json: bool) -> None:
    """List the workers alive on this storage and how many runs each holds."""
    run_command(_list(storage, as_json))


async def _unfinished(storage: Storage) -> list[RunRecord]:
    found: list[RunRecord] = []
    cursor = None
    while True:
        page = await storage.list_runs(statuses=_UNFINISHED, limit=_SCAN, before=cursor)
        found += page
        if len(page) < _SCAN:
            return found
        cursor = RunCursor(page[-1].created_at, page[-1].run_id)


def _held(runs: list[RunRecord], now: float) -> Counter[str]:
    return Counter(
        r.lease_owner
        for r in runs
        if r.lease_owner is not None and (r.lease_expires_at or 0.0) > now
    )


def _iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat()


async def _list(storage: str | None, as_json: bool) -> None:
    async with session(storage) as runtime:
        owners: list[OwnerRecord] = await runtime.storage.list_owners()
        runs = await _unfinished(runtime.storage)
    held = _held(runs, time.time())
    rows: list[dict[str, Any]] = [
        {
            "owner": o.owner,
            "host": o.host,
            "pid": o.pid,
            "started_at": _iso(o.started_at),
            "alive": o.alive,
            "runs_held": held.get(o.owner, 0),
        }
        for o in owners
        if o.alive
    ]
    if as_json:
        emit({"workers": rows})
        return
    if not rows:
        click.echo("no live worker on this storage (start one: pyworkflow worker run ...)")
        return
    for row in rows:
        click.echo(
            f"{row['owner']}  host {row['host']}  pid {row['pid']}  "
            f"since {row['started_at'] or '?'}  holds {row['runs_held']} run(s)"
        )


@click.command("queues")
@storage_option
@json_option
def queues_command(storage: str | None, as_json: bool) -> None:
    """Per queue: the unfinished runs held by a worker, and those due but held by none."""
    run_command(_queues(storage, as_json))


async def _queues(storage: str | None, as_json: bool) -> None:
    async with session(storage) as runtime:
        runs = await _unfinished(runtime.storage)
    now = time.time()
    table: dict[str, dict[str, int]] = {}
    for run in runs:
        row = table.setdefault(run.queue, {"held": 0, "waiting_for_worker": 0, "later": 0})
        if run.lease_owner is not None and (run.lease_expires_at or 0.0) > now:
            row["held"] += 1
        elif run.wake_at is not None and run.wake_at <= now:
            row["waiting_for_worker"] += 1
        else:
            row["later"] += 1
    if as_json:
        emit({"queues": [{"queue": q, **counts} for q, counts in sorted(table.items())]})
        return
    if not table:
        click.echo("no unfinished run on this storage")
        return
    for queue, counts in sorted(table.items()):
        click.echo(
            f"{queue}: {counts['held']} held by a worker, {counts['waiting_for_worker']} due "
            f"and waiting for one, {counts['later']} waiting for a timer, hook or child"
        )
