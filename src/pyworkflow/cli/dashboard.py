"""``pyworkflow dashboard``: serve the web dashboard over a storage (extra ``dashboard``).

The process opens the storage as the other commands do (``session``), executes no run (workers
do), and serves ``pyworkflow.dashboard`` with uvicorn. It binds 127.0.0.1 unless told
otherwise and says so. Without a write token (``--write-token`` or
``PYWORKFLOW_DASHBOARD_TOKEN``) it is read-only; ``--module`` lets it resume and re-run runs
(their workflows must be registered) and lists registered workflows without runs.

Example:
    .. code-block:: console

        $ pyworkflow dashboard --storage sqlite:///app.db
        $ PYWORKFLOW_DASHBOARD_TOKEN=s3cret pyworkflow dashboard -m app.flows --port 8900
"""

from __future__ import annotations

import click

from pyworkflow.cli.bridge import fail, run_command
from pyworkflow.cli.options import modules_option, storage_option
from pyworkflow.cli.session import session

__all__ = ["dashboard"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command()
@storage_option
@modules_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8900, show_default=True)
@click.option(
    "--write-token",
    envvar="PYWORKFLOW_DASHBOARD_TOKEN",
    default=None,
    metavar="TOKEN",
    help="Allow cancel, resume, re-run and hook delivery to whoever gives this token "
    "(login form or 'Authorization: Bearer'); without it the dashboard is read-only. "
    "Also PYWORKFLOW_DASHBOARD_TOKEN.",
)
def dashboard(
    storage: str | None, modules: tuple[str, ...], host: str, port: int, write_token: str | None
) -> None:
    """Serve the web dashboard: runs, timelines, workflows; writes with a token."""
    try:
        import uvicorn

        from pyworkflow.dashboard import create_app
    except ImportError as exc:
        fail(f"the dashboard needs its extra: pip install 'pyworkflow-durable[dashboard]' ({exc})")
    if write_token is not None and len(write_token) < 8:
        fail("--write-token is shorter than 8 characters: use a long random one")
    mode = "writes allowed with the token" if write_token else "read-only (no --write-token)"
    where = "only this machine can reach it" if host in _LOOPBACK else "reachable from the network"
    click.echo(
        f"pyworkflow dashboard on http://{host}:{port} ({where}; {mode}). On a network, put it "
        "behind a reverse proxy with TLS and its own authentication.",
        err=True,
    )

    async def serve() -> None:
        async with session(storage, modules, writes=write_token is not None):
            config = uvicorn.Config(
                create_app(write_token=write_token), host=host, port=port, log_level="warning"
            )
            await uvicorn.Server(config).serve()

    run_command(serve())
