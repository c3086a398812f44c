"""``pyworkflow runs export``: write many runs' event logs to a directory, one JSON file each.

Each selected run's history goes to ``DIR/<run_id>.json`` in the export format of
``pyworkflow.testing.save_history``, the files ``pyworkflow replay --file`` and
``pyworkflow.testing.load_history`` read: keep the histories of a release's runs to check the
next release against, or hand one to a bug report. The runs are picked with the filters of
``runs list`` (its options, and its keyset paging through the matching runs, newest first), or
named with ``--run-id``; every named run is looked up before anything is written, so a mistyped
id fails the command with one line and no file. A progress bar shows on a terminal.

An existing file of the same name is replaced: exporting again refreshes the directory. Each
file is written under a temporary name and renamed into place, so an interrupted export never
leaves a half-written history where ``replay --file`` would read it.

``--json`` prints ``{"exported": N, "directory": DIR, "files": [PATH, ...]}``, the directory
and the files as absolute paths, newest run first.

Example:
    .. code-block:: console

        $ pyworkflow runs export --out histories/ --workflow checkout --status suspended
        $ pyworkflow replay -m myapp.workflows --file histories/run_4b1e....json
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from pyworkflow.cli.bridge import fail, run_command
from pyworkflow.cli.inputs import parse_moment
from pyworkflow.cli.json_output import emit
from pyworkflow.cli.options import json_option, run_filter_options, storage_option
from pyworkflow.cli.session import missing_runs_explained, session
from pyworkflow.events import RunStatus
from pyworkflow.exceptions import RunNotFoundError
from pyworkflow.inspect import RunFilter, get_history, get_run, iter_runs
from pyworkflow.storage import EventRecord
from pyworkflow.testing import save_history

__all__ = ["export"]


@click.command("export")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Directory to write DIR/<run_id>.json in (created when missing).",
)
@run_filter_options
@click.option(
    "--run-id",
    "run_ids",
    multiple=True,
    metavar="RUN_ID",
    help="Export this run (repeatable) instead of the runs the filters select.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Export at most this many runs, the newest; default: every run that matches.",
)
@storage_option
@json_option
def export(
    out: Path,
    run_ids: tuple[str, ...],
    statuses: tuple[str, ...],
    workflow: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    storage: str | None,
    as_json: bool,
) -> None:
    """Write runs' event logs to DIR/<run_id>.json, for `pyworkflow replay --file`."""
    filtered = bool(statuses) or any(v is not None for v in (workflow, since, until, limit))
    if run_ids and filtered:
        fail(
            "--run-id names the runs to export and cannot be combined with --status, "
            "--workflow, --since, --until or --limit; pass either the ids or the filters"
        )
    now = time.time()
    start = None if since is None else parse_moment("--since", since, now)
    end = None if until is None else parse_moment("--until", until, now)
    if out.exists() and not out.is_dir():
        fail(
            f"--out {str(out)!r} is a file, not a directory; name a directory to write the "
            "histories in (it is created when missing)"
        )
    wanted = RunFilter(
        statuses=tuple(RunStatus(s) for s in statuses), workflow=workflow, since=start, until=end
    )
    files = run_command(_export(out, run_ids, wanted, limit, storage))
    if as_json:
        directory = out.resolve()
        emit(
            {
                "exported": len(files),
                "directory": str(directory),
                "files": [str(directory / f.name) for f in files],
            }
        )
    else:
        click.echo(f"{len(files)} run{'' if len(files) == 1 else 's'} exported to {out}")


async def _export(
    out: Path,
    run_ids: Sequence[str],
    wanted: RunFilter,
    limit: int | None,
    storage: str | None,
) -> list[Path]:
    """Select the runs, then write each one's history; returns the files written."""
    async with session(storage) as runtime:
        if run_ids:
            selected = list(dict.fromkeys(run_ids))  # once each, in the order given
            with missing_runs_explained(runtime, dict.fromkeys(selected, "given as --run-id")):
                for run_id in selected:
                    await get_run(runtime.storage, run_id)
        else:
            # Only ids are kept (the histories are read one run at a time below), so that the
            # progress bar knows its length before the first file is written.
            selected = [r.run_id async for r in iter_runs(runtime.storage, wanted, limit=limit)]
        # Only now, with the storage opened and every id found: a mistake creates no directory.
        _make_directory(out)
        written: list[Path] = []
        with contextlib.ExitStack() as stack:
            bar: Any = None
            # Off a terminal (a pipe, CI logs) a bar would only print its label.
            if selected and sys.stderr.isatty():
                bar = stack.enter_context(
                    click.progressbar(length=len(selected), label="exporting", file=sys.stderr)
                )
            for run_id in selected:
                try:
                    events = (await get_history(runtime.storage, run_id)).events
                except RunNotFoundError:
                    events = []
                if events:
                    written.append(_write(events, out / f"{run_id}.json"))
                else:
                    # Every stored run has its WORKFLOW_STARTED: this one was pruned meanwhile.
                    click.echo(
                        f"pyworkflow: run {run_id} was deleted during the export; skipped",
                        err=True,
                    )
                if bar is not None:
                    bar.update(1)
    return written


def _make_directory(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create the --out directory {str(out)!r}: {exc.strerror or exc}")


def _write(events: Sequence[EventRecord], path: Path) -> Path:
    """Write one history to ``path`` through a temporary file; a failure is one line, exit 2."""
    partial = path.with_name(f"{path.name}.partial")
    try:
        save_history(events, partial)
        os.replace(partial, path)
    except OSError as exc:
        fail(f"cannot write {str(path)!r}: {exc.strerror or exc}")
    return path
