"""``pyworkflow streams``: list stream runs, show one, emit a signal into one.

``streams emit`` is ``pyworkflow.emit`` from the command line (outside code): it stores the
signal and wakes the stream run's driver; a worker delivers it. A payload whose type a stream
step binds to a schema is validated when that step's module is imported (``--module``).

Example:
    .. code-block:: console

        $ pyworkflow streams list
        $ pyworkflow streams show job-42
        $ pyworkflow streams emit job-42 human.approved --stream reviews --payload '{"by": "ana"}'
"""

from __future__ import annotations

import json
from typing import Any

import click

from pyworkflow.cli.bridge import fail, run_command
from pyworkflow.cli.json_output import emit as emit_json
from pyworkflow.cli.options import json_option, modules_option, storage_option
from pyworkflow.cli.session import session
from pyworkflow.exceptions import InputError
from pyworkflow.inspect.streams import (
    StreamRunDetails,
    get_stream_run_details,
    list_stream_runs,
    stream_run_json,
)
from pyworkflow.streams import emit

__all__ = ["print_stream_run", "streams"]


@click.group()
def streams() -> None:
    """List stream runs, show one, or emit a signal into one."""


@streams.command("list")
@click.option("--stream", default=None, help="Only stream runs of this stream.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@storage_option
@json_option
def list_command(stream: str | None, limit: int, storage: str | None, as_json: bool) -> None:
    """List stream runs, newest first: stream, status, signals, driving run."""
    run_command(_list(stream, limit, storage, as_json))


async def _list(stream: str | None, limit: int, storage: str | None, as_json: bool) -> None:
    async with session(storage) as runtime:
        found = await list_stream_runs(runtime.storage, stream=stream, limit=limit)
    if as_json:
        emit_json({"stream_runs": [stream_run_json(r) for r in found]})
        return
    if not found:
        click.echo("no stream runs")
    for r in found:
        click.echo(
            f"{r.stream_run_id}  {r.stream}  {r.status}  signals={r.last_seq}  "
            f"batches={r.last_batch}  run={r.run_id}"
        )


@streams.command("show")
@click.argument("stream_run_id")
@storage_option
@json_option
def show_command(stream_run_id: str, storage: str | None, as_json: bool) -> None:
    """Show a stream run: its subscriptions (status, cursor, result) and latest signals."""
    run_command(_show(stream_run_id, storage, as_json))


async def _show(stream_run_id: str, storage: str | None, as_json: bool) -> None:
    async with session(storage) as runtime:
        try:
            details = await get_stream_run_details(
                runtime.storage, stream_run_id, codec=runtime.codec
            )
        except InputError as exc:
            fail(f"{exc}; `pyworkflow streams list` shows the stream runs")
    if as_json:
        emit_json(details.to_json())
        return
    print_stream_run(details)


def print_stream_run(details: StreamRunDetails) -> None:
    """A stream run as text: its row, its subscriptions, its latest signals."""
    r = details.record
    click.echo(f"stream run {r.stream_run_id} of stream {r.stream!r}: {r.status}")
    click.echo(f"  driven by run {r.run_id}; {r.last_seq} signals, {r.last_batch} batches")
    click.echo("subscriptions:")
    for s in details.subscriptions:
        line = f"  {s['step']}  {s['status']}  cursor={s['cursor']}  deliveries={s['deliveries']}"
        if s["detail"]:
            line += f"  ({s['detail']})"
        if s["result"] is not None:
            line += f"  result={json.dumps(s['result'], default=str)}"
        click.echo(line)
    click.echo("latest signals:")
    for g in details.signals:
        to = ", ".join(g["delivered_to"]) or "-"
        line = f"  #{g['seq']}  {g['signal_type']}  -> {to}"
        if g["refused_by"]:
            line += f"  (refused by {', '.join(g['refused_by'])}: payload fails its schema)"
        click.echo(line)


@streams.command("emit")
@click.argument("stream_run_id")
@click.argument("signal_type")
@click.option("--stream", required=True, help="The stream (channel) to emit on.")
@click.option("--payload", "payload_text", default=None, metavar="JSON", help="Payload as JSON.")
@modules_option
@storage_option
@json_option
def emit_command(
    stream_run_id: str,
    signal_type: str,
    stream: str,
    payload_text: str | None,
    modules: tuple[str, ...],
    storage: str | None,
    as_json: bool,
) -> None:
    """Emit a signal of SIGNAL_TYPE into STREAM_RUN_ID; a worker delivers it.

    Exit codes: 0 stored, 2 refused (unknown stream run, payload not JSON or failing its
    schema).
    """
    payload: Any = None
    if payload_text is not None:
        try:
            payload = json.loads(payload_text)
        except json.JSONDecodeError as exc:
            fail(f"--payload is not valid JSON ({exc.msg}); pass e.g. --payload '{{\"a\": 1}}'")
    run_command(_emit(stream_run_id, signal_type, stream, payload, modules, storage, as_json))


async def _emit(
    stream_run_id: str,
    signal_type: str,
    stream: str,
    payload: Any,
    modules: tuple[str, ...],
    storage: str | None,
    as_json: bool,
) -> None:
    async with session(storage, modules, writes=True):
        try:
            seq = await emit(stream, signal_type, payload, stream_run_id=stream_run_id)
        except InputError as exc:
            fail(f"{exc}; nothing emitted")
    if as_json:
        emit_json({"stream_run_id": stream_run_id, "seq": seq})
    else:
        click.echo(f"emitted {signal_type!r} into stream run {stream_run_id} as signal #{seq}")
