"""The ``pyworkflow`` command: workflows, runs, a long-lived worker and database maintenance.

Each command is one synchronous entry point that runs one ``asyncio.run(...)`` (see
``bridge.py``); logging is configured here and nowhere else in the package.

Example:
    .. code-block:: console

        $ pyworkflow worker run --module myapp.workflows --storage sqlite:///app.db
        $ pyworkflow workflows run onboarding -m myapp.workflows --arg user_id=u-42
        $ pyworkflow runs list --status failed --since 1d --json
        $ pyworkflow hooks resume hk_3Jx... --payload '{"approved": true}'
        $ pyworkflow --log-format json worker run --concurrency 50
        $ pyworkflow db upgrade --storage sqlite:///app.db
        $ pyworkflow db copy sqlite:///app.db postgresql://app@db.internal/app
        $ pyworkflow schedules create daily_report --cron "0 9 * * *" -m myapp.workflows
        $ pyworkflow dashboard --storage sqlite:///app.db --port 8900
"""

from __future__ import annotations

from typing import Any

import click

from pyworkflow import __version__, unfinished
from pyworkflow.cli import live_workers, project
from pyworkflow.cli.bridge import fail
from pyworkflow.cli.dashboard import dashboard
from pyworkflow.cli.db import db
from pyworkflow.cli.export import export
from pyworkflow.cli.hooks import hooks
from pyworkflow.cli.logs import LOG_FORMATS, setup_logging
from pyworkflow.cli.replay import replay
from pyworkflow.cli.runs import runs
from pyworkflow.cli.schedules import schedules
from pyworkflow.cli.streams import streams
from pyworkflow.cli.worker import scheduler, worker
from pyworkflow.cli.workflows import workflows
from pyworkflow.config import EXECUTORS, configure
from pyworkflow.config_file import storage_of
from pyworkflow.exceptions import PyWorkflowError

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pyworkflow")
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="text",
    show_default=True,
    envvar="PYWORKFLOW_LOG_FORMAT",
    help="'text': one readable line per record, with the run id; 'json': one JSON object.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
    envvar="PYWORKFLOW_LOG_LEVEL",
    help="Least severe level logged.",
)
@click.option(
    "--storage",
    "storage",
    metavar="URL",
    default=None,
    help="Storage URL for the command that follows (its own --storage wins); also a "
    "backend, file, sqlite or memory, with --storage-path.",
)
@click.option(
    "--storage-path",
    default=None,
    metavar="PATH",
    help="With --storage file (a directory, default ./workflow_data) or sqlite (a file).",
)
@click.option(
    "--module",
    "-m",
    "modules",
    multiple=True,
    metavar="MODULE",
    help="Module(s) defining workflows, for the command that follows (as its --module).",
)
@click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default=None,
    help="Output of the command that follows: tables for people (default) or JSON.",
)
@click.option("--json", "as_json", is_flag=True, default=False, help="The same as --output json.")
@click.option(
    "--runtime",
    type=click.Choice(list(EXECUTORS)),
    default=None,
    help="The executor of the command that follows (configure(executor=...)): local runs "
    "in this process, celery sends to Celery workers. Default: the configured one.",
)
@click.option("--verbose", "-v", is_flag=True, default=False, help="The same as --log-level debug.")
@click.pass_context
def main(
    ctx: click.Context,
    log_format: str,
    log_level: str,
    storage: str | None,
    storage_path: str | None,
    modules: tuple[str, ...],
    output: str | None,
    as_json: bool,
    runtime: str | None,
    verbose: bool,
) -> None:
    """Durable workflows as plain async Python: run and inspect workflows, serve, maintain.

    ``--storage``, ``--module``, ``--output``/``--json`` may also come before the command
    (``pyworkflow --storage sqlite:///app.db runs list``), as the pyworkflow documentation
    writes them; given after the command too, the command's own value wins. So may its
    ``--runtime`` and ``--verbose``.
    """
    setup_logging(log_format, "DEBUG" if verbose else log_level.upper())
    if runtime is not None:
        configure(executor=runtime)
    unfinished.silence()  # each command says itself what became of the runs it started
    given: dict[str, Any] = {}
    if storage in _BACKENDS:  # their spelling: a backend and a path, not a URL
        path = storage_path or _BACKENDS[storage]
        try:
            storage = storage_of(storage, path, "--storage")
        except PyWorkflowError as exc:
            fail(str(exc))
    elif storage_path is not None:
        fail("--storage-path goes with --storage file or --storage sqlite")
    if storage is not None:
        given["storage"] = storage
    if modules:
        given["modules"] = modules
    if as_json or output is not None:
        given["as_json"] = as_json or output == "json"
    if given:
        ctx.default_map = _defaults(main, given)


_BACKENDS = {"file": "./workflow_data", "sqlite": "./pyworkflow.db", "memory": None}
"""The backends ``--storage`` may name instead of a URL, and their default paths."""


def _defaults(group: click.Group, given: dict[str, Any]) -> dict[str, Any]:
    """A click ``default_map`` giving every command under ``group`` the global options' values.

    Defaults only: an option given after the command still wins.
    """
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            inner = _defaults(command, given)
        else:
            inner = {p.name: given[p.name] for p in command.params if p.name in given}
        if inner:
            found[name] = inner
    return found


main.add_command(workflows)
runs.add_command(export)  # here, not in runs.py: cli/export.py imports runs.py
main.add_command(runs)
main.add_command(hooks)
main.add_command(streams)
worker.add_command(live_workers.list_command)
worker.add_command(live_workers.list_command, "status")  # the pyworkflow docs' name
worker.add_command(live_workers.queues_command)
main.add_command(worker)
main.add_command(schedules)
main.add_command(scheduler)
main.add_command(project.quickstart)
main.add_command(project.setup)
main.add_command(db)
main.add_command(replay)
main.add_command(dashboard)
