"""Command-line options that several commands share, defined once so they read the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from pyworkflow.durations import parse_duration
from pyworkflow.events import RunStatus
from pyworkflow.exceptions import InvalidDurationError

__all__ = ["SECONDS", "json_option", "modules_option", "run_filter_options", "storage_option"]

_F = TypeVar("_F", bound=Callable[..., Any])


# Not click.ParamType[float, str]: generic only in newer click (pyproject allows 8.1).
class _Seconds(click.ParamType):  # type: ignore[type-arg]
    """A positive number of seconds (``15``, ``0.5``) or a duration (``30s``), bounded as all are.

    Through ``parse_duration``, so a value past its 100 years is refused like any other
    duration, quoted, instead of becoming a lease or a poll that ends after the year 9999.
    """

    name = "seconds"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = parse_duration(_number_or_text(value))
        except InvalidDurationError as exc:
            # Quoting what was typed ("1e20"), not the number it became (1e+20).
            self.fail(f"{value!r} is not a duration ({exc.reason})", param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r} is not a positive number of seconds", param, ctx)
        return seconds


def _number_or_text(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value  # a duration such as "30s", or something parse_duration refuses


SECONDS = _Seconds()
"""Click type of options that take seconds (``--lease-seconds``, ``--poll-interval``)."""

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
    help=(
        "Print JSON for machines instead of tables (keys documented in "
        "`pyworkflow.cli.json_output`)."
    ),
)
"""``--json``: machine-readable output with stable keys, documented in ``cli/json_output.py``."""


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
