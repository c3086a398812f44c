"""Command-line options that several commands share, defined once so they read the same."""

from __future__ import annotations

import click

__all__ = ["json_option", "modules_option", "storage_option"]

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
