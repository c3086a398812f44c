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

import click

from pyworkflow import __version__
from pyworkflow.cli.dashboard import dashboard
from pyworkflow.cli.db import db
from pyworkflow.cli.export import export
from pyworkflow.cli.hooks import hooks
from pyworkflow.cli.logs import LOG_FORMATS, setup_logging
from pyworkflow.cli.replay import replay
from pyworkflow.cli.runs import runs
from pyworkflow.cli.schedules import schedules
from pyworkflow.cli.worker import scheduler, worker
from pyworkflow.cli.workflows import workflows

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
def main(log_format: str, log_level: str) -> None:
    """Durable workflows as plain async Python: run and inspect workflows, serve, maintain."""
    setup_logging(log_format, log_level.upper())


main.add_command(workflows)
runs.add_command(export)  # here, not in runs.py: cli/export.py imports runs.py
main.add_command(runs)
main.add_command(hooks)
main.add_command(worker)
main.add_command(schedules)
main.add_command(scheduler)
main.add_command(db)
main.add_command(replay)
main.add_command(dashboard)
