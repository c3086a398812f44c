"""``pyworkflow hooks``: list the hooks runs wait on, and deliver a payload to one.

``hooks list`` shows hooks newest first, never a token: storage keeps only a token's hash, so
the token a workflow handed out (``on_created``) is the only copy. ``hooks resume TOKEN`` is
``pyworkflow.resume_hook`` from the command line: it stores the payload and makes the run due;
a worker then continues the run (this command executes nothing). The payload is JSON, given
inline (``--payload '{"approved": true}'``), from a file (``--payload-file``) or from stdin
(``--payload -``); without one the hook receives ``null``. A typed hook validates the payload
against its payload type, imported by the path stored with the hook: run the command where
the workflow's modules import (the project's directory), or name them with ``--module``.

Exit codes of ``hooks resume``: 0 delivered; 2 a mistake (unknown token, a payload that is not
JSON or does not fit the hook's type, a payload type that cannot be imported here); 3 the hook
already received a payload (a retried delivery can treat this as done); 4 the hook expired.

Example:
    .. code-block:: console

        $ pyworkflow hooks list --status waiting
        $ pyworkflow hooks resume hk_3Jx... --payload '{"approved": true, "reviewer": "ana"}'
        $ echo '{"approved": false}' | pyworkflow hooks resume hk_3Jx... --payload - -m app.flows
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from pyworkflow.cli.bridge import fail, run_command
from pyworkflow.cli.json_output import emit
from pyworkflow.cli.options import json_option, modules_option, storage_option
from pyworkflow.cli.session import missing_runs_explained, session
from pyworkflow.events import HookStatus
from pyworkflow.exceptions import (
    ConfigurationError,
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
)
from pyworkflow.hooks import resume_hook
from pyworkflow.inspect import hook_json, list_hooks

__all__ = ["ALREADY_RECEIVED", "EXPIRED", "hooks"]

ALREADY_RECEIVED = 3
"""Exit code of ``hooks resume`` when the hook already took a payload."""

EXPIRED = 4
"""Exit code of ``hooks resume`` when the hook's timeout has passed."""


@click.group()
def hooks() -> None:
    """List the hooks runs wait on, or deliver a payload to one."""


@hooks.command("list")
@click.option("--run", "run_id", default=None, metavar="RUN_ID", help="Only this run's hooks.")
@click.option(
    "--status",
    type=click.Choice([*(s.value for s in HookStatus), "pending"]),
    default=None,
    help="Only hooks in this status ('pending' is 'waiting', as the pyworkflow docs spell it).",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Most hooks shown."
)
@storage_option
@json_option
def list_command(
    run_id: str | None, status: str | None, limit: int, storage: str | None, as_json: bool
) -> None:
    """List hooks, newest first: their run, name, status, payload type and times."""
    run_command(_list(run_id, status, limit, storage, as_json))


async def _list(
    run_id: str | None, status: str | None, limit: int, storage: str | None, as_json: bool
) -> None:
    if status == "pending":
        status = HookStatus.WAITING.value
    wanted = None if status is None else HookStatus(status)
    async with session(storage) as runtime:
        notes = {} if run_id is None else {run_id: "given as --run"}
        with missing_runs_explained(runtime, notes):
            found = await list_hooks(runtime.storage, run_id=run_id, status=wanted, limit=limit)
    if as_json:
        emit({"hooks": [hook_json(h) for h in found]})
    else:
        # rich takes ~90 ms to import: only output for people loads it.
        from pyworkflow.cli import tables

        tables.print_hooks(tables.console(), found)


@hooks.command("resume")
@click.argument("token", metavar="TOKEN")
@click.option(
    "--payload",
    "payload_text",
    default=None,
    metavar="JSON",
    help="The payload as JSON; '-' reads it from stdin.",
)
@click.option(
    "--payload-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    metavar="PATH",
    help="Read the JSON payload from this file.",
)
@modules_option
@storage_option
@json_option
def resume_command(
    token: str,
    payload_text: str | None,
    payload_file: Path | None,
    modules: tuple[str, ...],
    storage: str | None,
    as_json: bool,
) -> None:
    """Deliver a JSON payload to the hook that handed out TOKEN; a worker continues its run.

    A typed hook's payload is checked against its type, imported here: run this where the
    workflow's modules import, or name them with --module. Exit codes: 0 delivered, 2 refused
    (unknown token, bad payload), 3 the hook already received a payload, 4 it expired.
    """
    payload = _payload(payload_text, payload_file)
    run_command(_resume(token, payload, modules, storage, as_json))


def _payload(text: str | None, path: Path | None) -> Any:
    """The payload the options give, parsed; exits 2 on two sources or on text that is not JSON."""
    if text is not None and path is not None:
        fail("give the payload once: --payload JSON, --payload - (stdin) or --payload-file PATH")
    if path is not None:
        source, text = f"--payload-file {str(path)!r}", path.read_text(encoding="utf-8")
    elif text == "-":
        source, text = "--payload - (stdin)", sys.stdin.read()
    elif text is not None:
        source = "--payload"
    else:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(
            f"{source} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "pass a JSON value, e.g. --payload '{\"approved\": true}' (a string needs its "
            "quotes: '\"yes\"')"
        )


async def _resume(
    token: str, payload: Any, modules: tuple[str, ...], storage: str | None, as_json: bool
) -> None:
    async with session(storage, modules, writes=True):
        try:
            info = await resume_hook(token, payload)
        except HookNotFoundError as exc:
            fail(
                f"{exc}; `pyworkflow hooks list --status waiting` shows the hooks still waiting "
                "(no token is stored: use the one the workflow handed out; check --storage)"
            )
        except HookAlreadyReceivedError as exc:
            fail(f"{exc}; nothing delivered", ALREADY_RECEIVED)
        except HookExpiredError as exc:
            fail(f"{exc}; nothing delivered", EXPIRED)
        except ConfigurationError as exc:
            # The one configuration step resume_hook takes: importing a typed hook's payload type.
            fail(
                f"{exc}; run this where the workflow's modules import (the project's directory, "
                "or PYTHONPATH), or name them with --module"
            )
    if as_json:
        emit(hook_json(info))
    else:
        click.echo(
            f"delivered the payload to hook {info.name!r} ({info.hook_id}) of run {info.run_id}; "
            "a worker continues the run"
        )
