"""Command-line options that several commands share, defined once so they read the same."""

from __future__ import annotations

import click

__all__ = ["storage_option"]

storage_option = click.option(
    "--storage",
    metavar="URL",
    default=None,
    help="Storage URL, e.g. sqlite:///app.db; default PYWORKFLOW_STORAGE, else "
    "sqlite:///pyworkflow.db.",
)
"""``--storage URL``: where runs live."""
