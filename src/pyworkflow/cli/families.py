"""``pyworkflow runs children`` and ``runs chain``: the runs a run started, and its chain.

A run's children are the runs it started with ``start_child_workflow`` (from its workflow code
or its steps), with the runs their continue-as-new started; ``runs children`` pages through
them newest first, as ``runs list`` pages through runs. ``runs chain`` follows a run's
continue-as-new links both ways and lists the chain first run to last, marking the run named.
A run of the chain that retention has deleted ends the walk there: the runs next to it say
where the chain went on (``continued_from``/``continued_to``).

Example:
    .. code-block:: console

        $ pyworkflow runs children run_4b1e...
        $ pyworkflow runs chain run_9c2f... --json
"""

from __future__ import annotations

from collections.abc import Callable

import click

from pyworkflow.cli.bridge import run_command
from pyworkflow.cli.options import json_option, storage_option
from pyworkflow.cli.session import require_run, session
from pyworkflow.cli.shapes import decode, emit, run_shape
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import RunCursor, RunRecord

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
    async with session(storage) as runtime:
        await require_run(runtime, run_id)
        cursor = None
        if before is not None:
            last = await require_run(runtime, before, "given as --before")
            cursor = RunCursor(last.created_at, last.run_id)
        rows = await runtime.storage.list_runs(parent_run_id=run_id, limit=limit + 1, before=cursor)
    page = rows[:limit]
    next_before = page[-1].run_id if len(rows) > limit else None
    if as_json:
        emit(
            {
                "run_id": run_id,
                "children": [run_shape(r) for r in page],
                "next_before": next_before,
            }
        )
    else:
        # rich takes ~90 ms to import: only output for people loads it.
        from pyworkflow.cli import tables

        tables.print_children(tables.console(), run_id, page, next_before, paged=bool(before))


@click.command("chain")
@click.argument("run_id", metavar="RUN_ID")
@storage_option
@json_option
def chain(run_id: str, storage: str | None, as_json: bool) -> None:
    """List the continue-as-new chain RUN_ID belongs to, first run to last."""
    run_command(_chain(run_id, storage, as_json))


async def _chain(run_id: str, storage: str | None, as_json: bool) -> None:
    async with session(storage) as runtime:
        given = await require_run(runtime, run_id)
        seen = {run_id}
        earlier = await _follow(runtime.storage, given, lambda r: r.continued_from, seen)
        later = await _follow(runtime.storage, given, lambda r: r.continued_to, seen)
        runs = [*reversed(earlier), given, *later]
        arguments = [decode(runtime.codec, r.args) for r in runs]
    if as_json:
        emit(
            {
                "run_id": run_id,
                "chain": [
                    {**run_shape(r), "args": a, "given": r.run_id == run_id}
                    for r, a in zip(runs, arguments, strict=True)
                ],
            }
        )
    else:
        from pyworkflow.cli import tables

        tables.print_chain(tables.console(), runs, arguments, run_id)


async def _follow(
    storage: Storage,
    start: RunRecord,
    link: Callable[[RunRecord], str | None],
    seen: set[str],
) -> list[RunRecord]:
    """The runs ``link`` leads to from ``start``, nearest first.

    Stops at a run no longer stored (pruned) and, should the links ever loop, at a run seen
    before, so that a damaged chain is shown rather than walked forever.
    """
    found: list[RunRecord] = []
    record = start
    while (next_id := link(record)) is not None and next_id not in seen:
        following = await storage.get_run(next_id)
        if following is None:
            break
        seen.add(next_id)
        found.append(following)
        record = following
    return found
