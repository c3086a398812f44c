"""``pyworkflow worker run``: a long-lived process that executes workflow runs.

The worker imports the user's modules (``--module`` and ``PYWORKFLOW_MODULES``) so their
workflows register, opens the storage (``--storage``, ``PYWORKFLOW_STORAGE``, else
``sqlite:///pyworkflow.db``) and serves through the runtime ``pyworkflow.config`` builds: it
claims runs started by other processes, wakes runs whose timer is due, and takes over runs
whose lease expired because their worker died.

With ``-Q billing,pyworkflow`` it executes only runs of those queues (a run's queue is its
workflow's ``@workflow(queue=...)``, else ``pyworkflow``); without it, runs of the default queue
``pyworkflow``. A worker is never client only, whatever ``PYWORKFLOW_CLIENT_ONLY`` says.

It fires the schedules of its workflows (``pyworkflow.schedules``), storing those declared by
``@scheduled_workflow`` at start; ``pyworkflow scheduler run`` is the same process.

With ``--retention 30d`` (or ``PYWORKFLOW_RETENTION``) it also deletes runs that ended more than
30 days ago, with their events, at start and then hourly, a batch at a time, and logs how many.

With ``--executor celery`` it is a Celery worker instead (the same as ``celery -A
pyworkflow.celery worker``, with these options): it executes the tasks the broker
(``--broker``, ``PYWORKFLOW_BROKER``) hands it, and sweeps storage for runs that came due.
``--beat`` embeds Celery beat with pyworkflow's scheduler class, as the pyworkflow documentation
spells it; a worker's sweeper fires schedules without it.

SIGTERM or SIGINT drains it: it stops claiming, hands every run it drives back to storage (so
another worker takes them over at once rather than after the lease) and exits 0. A second
signal during the drain exits at once; the leases of the runs still held then simply expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

import click

from pyworkflow import registry
from pyworkflow.cli.bridge import fail, run_command
from pyworkflow.cli.celery_worker_args import CeleryArgs, celery_worker_options
from pyworkflow.cli.inputs import parse_cli_duration
from pyworkflow.cli.options import SECONDS, storage_option
from pyworkflow.config import configure, configured_modules, executor_name
from pyworkflow.exceptions import ConfigurationError, PyWorkflowError
from pyworkflow.executors.local import LocalExecutor
from pyworkflow.queues import check_queues
from pyworkflow.runtime import get_runtime, shutdown
from pyworkflow.schedules import activate_scheduled_workflows

__all__ = ["scheduler", "worker"]

_log = logging.getLogger("pyworkflow.worker")

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

BEAT_SCHEDULER = "pyworkflow.celery.scheduler:PyWorkflowScheduler"
"""Celery beat's ``--scheduler`` for ``worker run --beat``."""


@click.group()
def worker() -> None:
    """Run workers that execute workflow runs."""


@worker.command("run")
@click.option(
    "--module",
    "-m",
    "modules",
    multiple=True,
    metavar="MODULE",
    help="Import path of a module defining workflows (repeatable); also PYWORKFLOW_MODULES, "
    "comma separated.",
)
@storage_option
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Most runs driven at once (default 1000).",
)
@click.option(
    "--lease-seconds",
    type=SECONDS,
    default=None,
    help="How long a claim on a run lasts without a heartbeat: a dead worker's runs are "
    "taken over this long after it died (default 15).",
)
@click.option(
    "--poll-interval",
    type=SECONDS,
    default=None,
    help="Longest pause, in seconds, between two looks at storage for due runs (default 1).",
)
@click.option(
    "--max-recoveries",
    type=click.IntRange(min=0),
    default=None,
    help="Take-overs of a run without progress (its worker keeps dying) before the run is "
    "failed (default 5).",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="On SIGTERM, seconds the steps running then may take to finish (their outcomes are "
    "logged, nothing new starts) before their runs are handed back (default 10).",
)
@click.option(
    "--executor",
    "--runtime",
    "executor",
    type=click.Choice(["local", "celery"]),
    default=None,
    help="local: claim runs from storage in this process; celery: be a Celery worker. "
    "Default: the configured one (runtime: in pyworkflow.config.yaml, PYWORKFLOW_EXECUTOR), "
    "else local.",
)
@click.option(
    "--broker",
    default=None,
    metavar="URL",
    help="With --executor celery: the broker (redis://..., amqp://...); also PYWORKFLOW_BROKER.",
)
@click.option(
    "--queues",
    "-Q",
    default=None,
    metavar="NAMES",
    help="Comma-separated queues to serve (default: pyworkflow, the queue of workflows "
    "without @workflow(queue=...)); also PYWORKFLOW_QUEUES. Local: only runs of these queues "
    "are executed here. Celery: the broker queues consumed; add those of @step(queue=...).",
)
@click.option(
    "--beat",
    is_flag=True,
    help="With --executor celery: embed Celery beat with pyworkflow's scheduler class "
    "(pyworkflow.celery.scheduler:PyWorkflowScheduler). Not needed: every worker fires "
    "schedules. Local: accepted, changes nothing.",
)
@click.option(
    "--retention",
    default=None,
    metavar="DURATION",
    help="Delete runs that ended longer ago than this (e.g. 30d), with their events: at start, "
    "then hourly; also PYWORKFLOW_RETENTION. Default: keep every run.",
)
@celery_worker_options
def run(
    modules: tuple[str, ...],
    storage: str | None,
    concurrency: int | None,
    lease_seconds: float | None,
    poll_interval: float | None,
    max_recoveries: int | None,
    drain_timeout: float | None,
    executor: str,
    broker: str | None,
    queues: str | None,
    beat: bool,
    retention: str | None,
    celery_args: CeleryArgs,
) -> None:
    """Execute workflow runs until SIGTERM or SIGINT, then hand them back and exit.

    Arguments after ``--`` go to ``celery worker`` as they are (``--executor celery``).
    """
    # Like other Python servers, find the user's modules relative to where the worker starts,
    # also when launched through the console script (whose sys.path lacks the cwd).
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)
    if retention is not None:
        parse_cli_duration("--retention", retention)  # a shell user's hint, before configure's
    served = None
    if queues is not None:
        try:
            served = list(check_queues(queues, source="--queues"))
        except ConfigurationError as exc:
            fail(str(exc))
    try:
        configure(
            storage=storage,
            modules=list(modules) or None,
            lease_seconds=lease_seconds,
            max_recoveries=max_recoveries,
            retention=retention,
            drain_seconds=drain_timeout,
            client_only=False,  # a worker executes runs, whatever PYWORKFLOW_CLIENT_ONLY says
            executor=executor,
        )
        executor = executor_name()
        if executor == "local":
            configure(queues=served)
    except PyWorkflowError as exc:
        fail(str(exc))
    if executor == "celery":
        _celery_worker(broker, concurrency, queues, beat, celery_args)
        return
    celery_args.refuse_locally()
    if beat:
        _log.info("--beat: a local worker fires the schedules of its workflows itself")
    run_command(_serve(concurrency, poll_interval))


@click.group()
def scheduler() -> None:
    """Run the scheduler: fire the schedules of your workflows (a worker does it too)."""


@scheduler.command("run")
@click.option(
    "--module",
    "-m",
    "modules",
    multiple=True,
    metavar="MODULE",
    help="Import path of a module defining workflows (repeatable); also PYWORKFLOW_MODULES.",
)
@storage_option
@click.option(
    "--poll-interval",
    type=SECONDS,
    default=None,
    help="Longest pause, in seconds, between two looks at storage (default 1).",
)
@click.option(
    "--duration",
    type=SECONDS,
    default=None,
    help="Stop after this many seconds (default: run until SIGTERM or SIGINT).",
)
def scheduler_run(
    modules: tuple[str, ...],
    storage: str | None,
    poll_interval: float | None,
    duration: float | None,
) -> None:
    """Fire due schedules and execute the runs they start, as ``worker run`` does.

    A worker fires the schedules of the workflows it serves; this is the same process by the
    name the pyworkflow documentation gives it, with ``--duration`` for a bounded run.
    """
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        configure(storage=storage, modules=list(modules) or None, client_only=False)
    except PyWorkflowError as exc:
        fail(str(exc))
    run_command(_serve(None, poll_interval, duration))


def _user_workflows() -> list[str]:
    """The registered workflows but the built-in ones (``pyworkflow.stream`` ...)."""
    return [name for name in registry.workflow_names() if not name.startswith("pyworkflow.")]


def _celery_worker(
    broker: str | None,
    concurrency: int | None,
    queues: str | None,
    beat: bool,
    extra: CeleryArgs,
) -> None:
    """Become a Celery worker of pyworkflow's app (``celery -A pyworkflow.celery worker``)."""
    try:
        from pyworkflow.executors.celery import create_app
    except ImportError as exc:
        fail(f"--executor celery needs Celery ({exc}); pip install 'pyworkflow-durable[celery]'")
    try:
        registry.import_modules(configured_modules())
    except PyWorkflowError as exc:
        fail(str(exc))
    if not _user_workflows():
        fail(
            "no workflows found: pass --module MODULE (or set PYWORKFLOW_MODULES) naming "
            "the modules that define them"
        )
    app = create_app(broker)
    configure(executor="celery", celery_app=app)
    argv = ["worker", f"--loglevel={extra.loglevel or 'INFO'}"]
    if concurrency is not None:
        argv.append(f"--concurrency={concurrency}")
    if queues:
        argv.append(f"--queues={queues}")
    if beat:
        argv += ["--beat", f"--scheduler={BEAT_SCHEDULER}"]
    app.worker_main([*argv, *extra.argv()])


async def _serve(
    concurrency: int | None, poll_interval: float | None, duration: float | None = None
) -> None:
    stop = asyncio.Event()
    _install_signal_handlers(stop)
    if duration is not None:
        asyncio.get_running_loop().call_later(duration, stop.set)
    # Import before get_runtime() opens the storage: a mistyped module then fails fast and
    # leaves no database file behind. get_runtime() imports them again, a no-op.
    registry.import_modules(configured_modules())
    names = _user_workflows()
    if not names:
        raise ConfigurationError(
            "no workflows found: pass --module MODULE (or set PYWORKFLOW_MODULES) naming "
            "the modules that define them"
        )
    serving: asyncio.Task[None] | None = None
    try:
        runtime = await get_runtime()
        executor = runtime.executor
        if isinstance(executor, LocalExecutor):
            if concurrency is not None:
                executor.max_concurrent_runs = concurrency
            if poll_interval is not None:
                executor.poll_interval = poll_interval
                executor.periodic.schedule_poll = poll_interval
            keeps = executor.retention
            kept = "" if keeps is None else f", retention {keeps / 86400:g} days"
            limits = (
                f" (queues {executor.serving.describe()}, "
                f"concurrency {executor.max_concurrent_runs}, lease "
                f"{executor.engine.settings.lease_seconds:g}s, poll "
                f"{executor.poll_interval:g}s{kept})"
            )
        else:
            limits = ""
        _log.info(
            "worker %s serving %s with workflows: %s%s",
            executor.owner,
            runtime.storage.url,
            ", ".join(names),
            limits,
        )
        declared = await activate_scheduled_workflows()
        if declared:
            _log.info("schedules declared here: %s", ", ".join(declared))
        if stop.is_set():
            return
        serving = asyncio.create_task(executor.serve(), name="pyworkflow-serve")
        stopping = asyncio.create_task(stop.wait(), name="pyworkflow-stop")
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if serving.done():
            serving.result()  # a crash of the executor is a bug: let its traceback show
            raise RuntimeError("the executor stopped serving without being asked to")
    finally:
        if serving is not None:
            _log.info("draining: stopped claiming, handing runs back")
        await shutdown()
        if serving is not None:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
            _log.info("worker stopped")


def _install_signal_handlers(stop: asyncio.Event) -> None:
    """The first SIGTERM/SIGINT sets ``stop``; a second one exits at once."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            _log.warning(
                "%s again: exiting without handing runs back; their leases will expire", name
            )
            logging.shutdown()
            os._exit(128 + signum)
        _log.info("%s received: stopping", name)
        stop.set()

    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
