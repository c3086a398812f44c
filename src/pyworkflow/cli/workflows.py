"""``pyworkflow workflows``: the workflows a project defines, and starting a run of one.

Workflows are found by importing ``--module`` (or ``PYWORKFLOW_MODULES`` / ``PYWORKFLOW_MODULE``,
comma separated), relative to the working directory.

``workflows run`` starts a run and, unless ``--no-wait``, executes it in this process while
printing each event of its log as it is logged, until the run ends; the exit code is 0 when it
completed and 1 when it failed or was cancelled. A run that sleeps or waits past the executor's
horizon is picked up again here when due (or by any worker). Ctrl-C stops following and hands the
run back to storage, where a worker continues it. With ``--no-wait`` the run is only stored, for
a worker to execute, and its id printed.

Example:
    .. code-block:: console

        $ pyworkflow workflows list -m myapp.workflows
        $ pyworkflow workflows run onboarding -m myapp.workflows --arg user_id=u-42
        $ pyworkflow workflows run onboarding --args-json '["u-42"]' --no-wait
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import click
from click.core import ParameterSource

from pyworkflow import registry
from pyworkflow._backoff import Backoff
from pyworkflow.cli.bridge import fail, run_command
from pyworkflow.cli.inputs import workflow_arguments
from pyworkflow.cli.json_output import emit
from pyworkflow.cli.options import json_option, modules_option, storage_option
from pyworkflow.cli.session import import_workflows, session
from pyworkflow.client import run as run_here
from pyworkflow.client import start
from pyworkflow.events import RunStatus
from pyworkflow.exceptions import PyWorkflowError
from pyworkflow.inspect import (
    describe_workflow,
    event_json,
    format_duration,
    format_time,
    get_decoded_run,
    get_history,
    short,
    summarize,
)
from pyworkflow.runtime import Runtime
from pyworkflow.storage import EventRecord
from pyworkflow.transient import is_transient
from pyworkflow.workflow import Workflow

__all__ = ["workflows"]

# Storage is polled for new events between these pauses: fast while events come, then slower.
_MIN_PAUSE = 0.05
_MAX_PAUSE = 0.5


@click.group()
def workflows() -> None:
    """List the registered workflows, describe one, or run one."""


def _load(modules: tuple[str, ...]) -> list[str]:
    try:
        return import_workflows(modules)
    except PyWorkflowError as exc:
        fail(str(exc))


def _find(name: str) -> Workflow[..., Any]:
    try:
        return registry.get_workflow(name)
    except PyWorkflowError as exc:
        fail(str(exc))


@workflows.command("list")
@modules_option
@storage_option
@json_option
def list_workflows(modules: tuple[str, ...], storage: str | None, as_json: bool) -> None:
    """List the workflows the modules register: parameters, max duration, steps.

    The list comes from the code: --storage is taken, as every command takes it, and unused.
    """
    described = [describe_workflow(registry.get_workflow(n)) for n in _load(modules)]
    if as_json:
        emit({"workflows": [w.to_json() for w in described]})
    else:
        # rich takes ~90 ms to import: only output for people loads it.
        from pyworkflow.cli import tables

        tables.print_workflows(tables.console(), described)


@workflows.command("info")
@click.argument("name")
@modules_option
@storage_option
@json_option
def info(name: str, modules: tuple[str, ...], storage: str | None, as_json: bool) -> None:
    """Describe one workflow: signature, parameters, the steps it calls and their options.

    The description comes from the code: --storage is taken, as every command takes it, and
    unused.
    """
    _load(modules)
    described = describe_workflow(_find(name))
    if as_json:
        emit(described.to_json())
    else:
        from pyworkflow.cli import tables

        tables.print_workflow(tables.console(), described)


@workflows.command("run")
@click.argument("name")
@click.option(
    "--arg",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="An argument by name (repeatable); VALUE is read as JSON when it parses, else as text.",
)
@click.option(
    "--args-json",
    "--input",
    "args_json",
    default=None,
    metavar="JSON",
    help="Arguments as a JSON object (by name) or list (in order); --input is the same.",
)
@click.option(
    "--idempotency-key",
    default=None,
    metavar="KEY",
    help="Start at most one run for KEY: again with the same key follows the existing run.",
)
@click.option(
    "--no-wait", is_flag=True, default=False, help="Store the run for a worker, print its id."
)
@click.option(
    "--durable/--no-durable",
    default=None,
    help="--no-durable: run it transiently, here, nothing stored, and print its result; "
    "--durable: a durable run even of a @workflow(durable=False). Default: the workflow's.",
)
@modules_option
@storage_option
@json_option
def run(
    name: str,
    pairs: tuple[str, ...],
    args_json: str | None,
    idempotency_key: str | None,
    no_wait: bool,
    durable: bool | None,
    modules: tuple[str, ...],
    storage: str | None,
    as_json: bool,
) -> None:
    """Start a run of workflow NAME and follow it, one line per event, until it ends."""
    _load(modules)
    definition = _find(name)
    args, kwargs = workflow_arguments(definition, pairs, args_json)
    if durable is not None:
        kwargs = {**kwargs, "durable": durable}  # start()'s own keyword, not the workflow's
    if is_transient(definition, durable):
        if no_wait or idempotency_key is not None:
            fail("--no-wait and --idempotency-key need a durable run (drop --no-durable)")
        sys.exit(run_command(_run_transient(definition, args, kwargs, as_json)))
    root = click.get_current_context().find_root()
    chosen = root.params.get("verbose") or (
        root.get_parameter_source("log_level") is not ParameterSource.DEFAULT
    )
    if not no_wait and not chosen:
        # The events are printed on stdout already: by default, log only what goes wrong.
        logging.getLogger("pyworkflow").setLevel(logging.WARNING)
    code = run_command(
        _run(definition, args, kwargs, idempotency_key, no_wait, modules, storage, as_json)
    )
    sys.exit(code)


async def _run(
    definition: Workflow[..., Any],
    args: list[Any],
    kwargs: dict[str, Any],
    idempotency_key: str | None,
    no_wait: bool,
    modules: tuple[str, ...],
    storage: str | None,
    as_json: bool,
) -> int:
    # Following: drive this one run here. --no-wait: drive nothing, so the run is stored
    # unleased and due, and a worker claims it at once.
    async with session(storage, modules, create=True, drive=0 if no_wait else 1) as runtime:
        run_id = await start(definition, *args, idempotency_key=idempotency_key, **kwargs)
        if no_wait:
            if as_json:
                emit({"run_id": run_id})
            else:
                click.echo(run_id)
            return 0
        if not as_json:
            click.echo(f"run {run_id} of {definition.name}")
        return await _follow(runtime, run_id, as_json)


async def _run_transient(
    definition: Workflow[..., Any], args: list[Any], kwargs: dict[str, Any], as_json: bool
) -> int:
    try:
        result = await run_here(definition, *args, **kwargs)
    except Exception as exc:
        if as_json:
            emit({"error": {"type": type(exc).__name__, "message": str(exc)}}, indent=None)
        else:
            click.echo(f"transient run of {definition.name} failed: {type(exc).__name__}: {exc}")
        return 1
    if as_json:
        emit({"result": result}, indent=None)
    else:
        click.echo(f"transient run of {definition.name} completed: {short(result, 200)}")
    return 0


async def _follow(runtime: Runtime, run_id: str, as_json: bool) -> int:
    seen, previous = 0, None
    pauses = Backoff(_MIN_PAUSE, _MAX_PAUSE)
    try:
        while True:
            # Raises RunNotFoundError when the run is deleted while followed (a retention job).
            history = await get_history(runtime.storage, run_id, after_seq=seen)
            for event in history.events:
                _print_event(runtime, event, previous, as_json)
                seen, previous = event.seq, event.created_at
            if history.run.status.is_terminal:
                break
            if history.events:
                pauses.reset()
            await runtime.executor.wait_finished(run_id, pauses.next())
    except asyncio.CancelledError:  # Ctrl-C: the session hands the run back on the way out
        click.echo(
            f"stopped following run {run_id}; a worker continues it "
            f"(pyworkflow runs show {run_id})",
            err=True,
        )
        raise
    return await _print_end(runtime, run_id, as_json)


def _print_event(
    runtime: Runtime, event: EventRecord, previous: float | None, as_json: bool
) -> None:
    if as_json:
        emit({"event": event_json(event)}, indent=None)
        return
    since = "" if previous is None else "+" + format_duration(event.created_at - previous)
    clock = format_time(event.created_at, precise=True)[11:]
    line = f"{clock} {since:>9}  {event.type.value:<22} {summarize(event, runtime.codec)}"
    click.echo(line.rstrip())


async def _print_end(runtime: Runtime, run_id: str, as_json: bool) -> int:
    ended = await get_decoded_run(runtime.storage, run_id, codec=runtime.codec)
    run = ended.run
    code = 1 if run.status in (RunStatus.FAILED, RunStatus.CANCELLED) else 0
    if as_json:
        emit({"run": ended.to_json()}, indent=None)
        return code
    took = format_duration((run.completed_at or run.updated_at) - run.created_at)
    if run.status is RunStatus.COMPLETED:
        click.echo(f"run {run_id} completed in {took}: {short(ended.result, 200)}")
    elif run.status is RunStatus.FAILED:
        error = run.error or {}
        click.echo(
            f"run {run_id} failed after {took}: {error.get('type', '?')}: "
            f"{error.get('message', '')} (traceback: pyworkflow runs show {run_id})"
        )
    elif run.status is RunStatus.CANCELLED:
        reason = f": {run.cancel_reason}" if run.cancel_reason else ""
        click.echo(f"run {run_id} was cancelled after {took}{reason}")
    else:
        click.echo(f"run {run_id} ended {run.status.value} after {took}")
    return code
