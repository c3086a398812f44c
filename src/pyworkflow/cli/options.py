"""Command-line options that several commands share, defined once so they read the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from pyworkflow._engine.events import RunStatus

__all__ = ["json_option", "modules_option", "run_filter_options", "storage_option"]

_F = TypeVar("_F", bound=Callable[..., Any])

storage_option = click.option(
    "--storage",
    metavar="URL",
    default=None,
    help="Storage URL, e.g. sqlite:///app.db; default PYWORKFLOW_STORAGE, else "
    "sqlite:///pyworkflow.db.",
)
"""``--storage URL``: where runs live."""

modules_option = click.option(
    "--module",
    "-m",
    "modules",
    multiple=True,
    metavar="MODULE",
    help="Import path of a module defining workflows (repeatable); also PYWORKFLOW_MODULES "
    "(or PYWORKFLOW_MODULE), comma separated.",
)
"""``--module MODULE`` (repeatable): where the user's workflows are defined."""

json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    default=False,
    help="Print JSON for machines instead of tables (keys documented in `pyworkflow.cli.shapes`).",
)
"""``--json``: machine-readable output with stable keys, documented in ``cli/shapes.py``."""


def run_filter_options(command: _F) -> _F:
    """``--status`` (repeatable), ``--workflow``, ``--since``, ``--until``: which runs.

    The command receives ``statuses``, ``workflow``, ``since`` and ``until`` (the times as
    typed; ``inputs.parse_moment`` reads them).
    """
    options = [
        click.option(
            "--status",
            "statuses",
            multiple=True,
            type=click.Choice([s.value for s in RunStatus]),
            help="Only runs in this status (repeatable).",
        ),
        click.option(
            "--workflow", default=None, metavar="NAME", help="Only runs of this workflow."
        ),
        click.option(
            "--since",
            default=None,
            metavar="WHEN",
            help="Only runs created at or after WHEN: a duration back from now (1h, 2d) or an "
            "ISO date-time (local time without an offset).",
        ),
        click.option(
            "--until",
            default=None,
            metavar="WHEN",
            help="Only runs created before WHEN (as --since).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command
