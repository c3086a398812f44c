"""``pyworkflow replay``: check, before a deploy, that the runs in a database resume under new code.

Each run's history is replayed against the workflows of ``--module`` by the replay checker
(``pyworkflow.testing.replay_runs``): nothing executes and nothing is written. By default it
replays every run of every workflow the modules define; ``--workflow`` narrows that down,
``--run-id`` names runs, ``--file`` replays exported histories (``save_history``'s format; a
folder stands for every ``*.json`` file in it, as ``runs export --out DIR`` writes them) and
needs no database. A progress bar shows on a terminal.

Exit codes: 0 when every history replayed, 1 when one diverged or could not be replayed, 2 for
a user's mistake (unknown workflow or run, bad file, bad ``--storage``), with one line.

``--json`` prints ``{"ok", "replayed", "diverged", "errors", "runs": [result, ...]}`` where a
result is ``ReplayResult.to_dict()``: ``run_id``, ``workflow``, ``events``, ``ok``,
``divergence`` (``position``, ``logged``, ``issued``, ``message``) or null, ``error``
(``type``, ``message``) or null.

Example:
    .. code-block:: console

        $ pyworkflow replay -m myapp.workflows --storage sqlite:///app.db --status suspended
        $ pyworkflow replay -m myapp.workflows --file checkout-run.json --json
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from pyworkflow import registry
from pyworkflow.cli.bridge import fail, run_command
from pyworkflow.cli.json_output import emit
from pyworkflow.cli.options import json_option, modules_option, storage_option
from pyworkflow.cli.session import import_workflows, session
from pyworkflow.events import RunStatus
from pyworkflow.exceptions import RunNotFoundError
from pyworkflow.testing import ReplayResult, load_history, replay_history, replay_runs

__all__ = ["replay"]

# Exit code when a history diverged or could not be replayed (2 is a user's mistake).
_DIVERGED = 1


@click.command("replay")
@modules_option
@storage_option
@click.option(
    "--workflow",
    "workflows",
    multiple=True,
    metavar="NAME",
    help="Replay the runs of this workflow (repeatable); default: every workflow of --module.",
)
@click.option(
    "--run-id", "run_ids", multiple=True, metavar="RUN_ID", help="Replay this run (repeatable)."
)
@click.option(
    "--file",
    "files",
    multiple=True,
    type=click.Path(),
    metavar="PATH",
    help="Replay a history exported as JSON, or every *.json file of a folder such as `runs "
    "export --out DIR` writes (repeatable); needs no database.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in RunStatus]),
    help="Only runs in this status (repeatable), e.g. suspended and running for the runs a "
    "deploy would resume.",
)
@json_option
def replay(
    modules: tuple[str, ...],
    storage: str | None,
    workflows: tuple[str, ...],
    run_ids: tuple[str, ...],
    files: tuple[str, ...],
    statuses: tuple[str, ...],
    as_json: bool,
) -> None:
    """Replay recorded runs against the current code and report where any diverges."""
    results = run_command(_replay(modules, storage, workflows, run_ids, files, statuses))
    _report(results, as_json)
    if not all(r.ok for r in results):
        raise SystemExit(_DIVERGED)


async def _replay(
    modules: tuple[str, ...],
    storage: str | None,
    workflows: tuple[str, ...],
    run_ids: tuple[str, ...],
    files: tuple[str, ...],
    statuses: tuple[str, ...],
) -> list[ReplayResult]:
    import_workflows(modules)
    # Read every file before replaying anything, so a bad one fails the command at once.
    histories = [load_history(path) for path in _history_files(files)]
    for history in histories:
        registry.get_workflow(history.workflow_name)
    use_storage = bool(run_ids or workflows or not files)
    # Files only: a memory storage stands in, the codec still comes from the configuration.
    async with session(storage if use_storage else "memory://", modules) as runtime:
        results = [await replay_history(h.workflow_name, h, codec=runtime.codec) for h in histories]
        if not use_storage:
            return results
        with contextlib.ExitStack() as stack:
            bar: Any = None

            def advance(result: ReplayResult, total: int) -> None:
                nonlocal bar
                if bar is None:
                    bar = stack.enter_context(
                        click.progressbar(length=total, label="replaying", file=sys.stderr)
                    )
                bar.update(1)

            try:
                results += await replay_runs(
                    runtime.storage,
                    run_ids=run_ids or None,
                    workflow_name=None if run_ids else (workflows or registry.workflow_names()),
                    statuses=statuses or None,
                    codec=runtime.codec,
                    # Off a terminal (a pipe, CI logs) a bar would only print its label.
                    on_result=advance if sys.stderr.isatty() else None,
                )
            except RunNotFoundError as exc:
                fail(
                    f"{exc} in {runtime.storage.url}; check the id and --storage "
                    "(`pyworkflow runs list` shows the runs there)"
                )
    return results


def _history_files(paths: tuple[str, ...]) -> list[str]:
    """The files ``--file`` names, a folder standing for its ``*.json`` files, in name order."""
    files: list[str] = []
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)
            continue
        # Only *.json: an export's files, not the .partial of an interrupted one or a README.
        found = sorted(str(p) for p in Path(path).glob("*.json") if p.is_file())
        if not found:
            fail(
                f"no history files (*.json) in the folder {path!r}; "
                "`pyworkflow runs export --out DIR` writes them"
            )
        files += found
    return files


def _report(results: list[ReplayResult], as_json: bool) -> None:
    diverged = sum(r.divergence is not None for r in results)
    errors = sum(r.error is not None for r in results)
    if as_json:
        emit(
            {
                "ok": diverged == errors == 0,
                "replayed": len(results),
                "diverged": diverged,
                "errors": errors,
                "runs": [r.to_dict() for r in results],
            }
        )
        return
    for result in results:
        where = f"{result.run_id} ({result.workflow_name})"
        if result.divergence is not None:
            d = result.divergence
            click.echo(
                f"DIVERGED {where} at command {d.position}: the log has "
                f"{d.logged or 'nothing'}, the code now issues {d.issued or 'nothing'}"
            )
        elif result.error is not None:
            click.echo(f"ERROR    {where}: {type(result.error).__name__}: {result.error}")
    ok = len(results) - diverged - errors
    noun = "history" if len(results) == 1 else "histories"
    click.echo(
        f"replayed {len(results)} {noun}: {ok} ok, {diverged} diverged, "
        f"{errors} could not be replayed"
    )
