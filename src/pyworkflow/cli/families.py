"""``pyworkflow runs children`` and ``runs chain``: the runs a run started, and its chain.

A run's children are the runs it started with ``start_child_workflow`` (from its workflow code
or its steps), with the runs their continue-as-new started; ``runs children`` pages through
them newest first, as ``runs list`` pages through runs. ``runs chain`` follows a run's
continue-as-new links both ways and lists the chain first run to last, marking the run named.
A run of the chain that retention has deleted ends the walk there: the runs next to it say
where the chain went on (``continued_from``/``continued_to``). Both come from the read model
(``pyworkflow.inspect``); this module renders them.

Example:
    .. code-block:: console

        $ pyworkflow runs children run_4b1e...
        $ pyworkflow runs chain run_9c2f... --json
"""

from __future__ import annotations

import click

from pyworkflow.cli.bridge import run_command
from pyworkflow.cli.json_output import emit
from pyworkflow.cli.options import json_option, storage_option
from pyworkflow.cli.session import missing_runs_explained, session
from pyworkflow.inspect import get_chain, list_children

__all__ = ["chain", "children"]


@click.command("children")
@click.argument("run_id", metavar="RUN_ID")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Children per page.",
)
@click.option(
    "--before",
    default=None,
    metavar="RUN_ID",
    help="Page on: the children created before this one (the cursor the previous page printed).",
)
@storage_option
@json_option
def children(
    run_id: str, limit: int, before: str | None, storage: str | None, as_json: bool
) -> None:
    """List the child runs RUN_ID started, newest first: status, policy, when."""
    run_command(_children(run_id, limit, before, storage, as_json))


async def _children(
    run_id: str, limit: int, before: str | None, storage: str | None, as_json: bool
) -> None:
    # The command's own RUN_ID is named as such, also when --before repeats it.
    notes = {} if before is None or before == run_id else {before: "given as --before"}
    async with session(storage) as runtime:
        with missing_runs_explained(runtime, notes):
            page = await list_children(runtime.storage, run_id, limit=limit, before=before)
    if as_json:
        emit(page.to_json())
    else:
        # rich takes ~90 ms to import: only output for people loads it.
        from pyworkflow.cli import tables

        tables.print_children(tables.console(), page, paged=bool(before))


@click.command("chain")
@click.argument("run_id", metavar="RUN_ID")
@storage_option
@json_option
def chain(run_id: str, storage: str | None, as_json: bool) -> None:
    """List the continue-as-new chain RUN_ID belongs to, first run to last."""
    run_command(_chain(run_id, storage, as_json))


async def _chain(run_id: str, storage: str | None, as_json: bool) -> None:
    async with session(storage) as runtime:
        with missing_runs_explained(runtime):
            found = await get_chain(runtime.storage, run_id, codec=runtime.codec)
    if as_json:
        emit(found.to_json())
    else:
        from pyworkflow.cli import tables

        tables.print_chain(tables.console(), found)
