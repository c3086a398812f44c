"""``pyworkflow setup`` and ``pyworkflow quickstart``: a config file, and a project that runs.

``setup`` writes ``pyworkflow.config.yaml`` (``pyworkflow/config_file.py`` reads it) in the
working directory: which module holds the workflows and where runs are stored. ``quickstart``
writes that too, plus a ``workflows`` package with two workflows and a ``run_example.py`` that
starts one, so ``python run_example.py`` and ``pyworkflow workflows run process_order ...``
work at once. Neither overwrites a file that exists. No Docker is needed for a local project
(SQLite is embedded): ``--skip-docker`` is accepted and changes nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pyworkflow.cli.setup_check import check_setup
from pyworkflow.config_file import FILE_NAME

__all__ = ["quickstart", "setup"]

_BACKENDS = ("sqlite", "file", "memory")


def _config_text(module: str, backend: str, path: str | None) -> str:
    lines = [
        "# pyworkflow settings for this project (written by `pyworkflow setup`).",
        "# configure() and --options win over this file; it wins over PYWORKFLOW_* variables.",
        f"module: {module}",
        "runtime: local",
        "storage:",
        f"  backend: {backend}",
    ]
    if backend != "memory":
        lines.append(
            f"  path: {path or ('./pyworkflow.db' if backend == 'sqlite' else './workflow_data')}"
        )
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    if path.exists():
        raise click.ClickException(f"{path} exists already; nothing was written")
    path.write_text(text, encoding="utf-8")


def _interactive(non_interactive: bool) -> bool:
    return not non_interactive and sys.stdin.isatty()


@click.command("setup")
@click.option("--non-interactive", is_flag=True, help="Ask nothing; use the options and defaults.")
@click.option("--skip-docker", is_flag=True, help="Accepted; a local project needs no Docker.")
@click.option("--module", default=None, metavar="MODULE", help="Module holding the workflows.")
@click.option(
    "--storage",
    "backend",
    type=click.Choice(_BACKENDS),
    default=None,
    help="sqlite (default), file (SQLite in a directory) or memory.",
)
@click.option("--storage-path", default=None, metavar="PATH", help="Database file or directory.")
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing: check the config file, the modules, the storage and the broker.",
)
def setup(
    non_interactive: bool,
    skip_docker: bool,
    module: str | None,
    backend: str | None,
    storage_path: str | None,
    check: bool,
) -> None:
    """Write pyworkflow.config.yaml here: the workflows' module and the storage."""
    if check:
        check_setup()
        return
    ask = _interactive(non_interactive)
    if module is None:
        module = (
            click.prompt("Module holding your workflows", default="workflows")
            if ask
            else "workflows"
        )
    if backend is None:
        backend = (
            click.prompt("Storage", type=click.Choice(_BACKENDS), default="sqlite")
            if ask
            else "sqlite"
        )
    _write(Path.cwd() / FILE_NAME, _config_text(module, backend, storage_path))
    click.echo(f"wrote {FILE_NAME}: module {module}, {backend} storage")


_ORDERS = '''"""Order workflows (written by `pyworkflow quickstart`)."""

from pyworkflow import sleep, step, workflow


@step(max_retries=3)
async def validate_order(order_id: str) -> dict:
    return {"order_id": order_id, "valid": True}


@step()
async def charge(order_id: str, amount: float) -> dict:
    return {"order_id": order_id, "charged": amount}


@workflow()
async def process_order(order_id: str, amount: float) -> dict:
    order = await validate_order(order_id)
    await sleep("1s")  # durable: a crash here resumes after the sleep
    payment = await charge(order_id, amount)
    return {**order, **payment, "status": "completed"}
'''

_NOTIFICATIONS = '''"""Notification workflows (written by `pyworkflow quickstart`)."""

from pyworkflow import step, workflow


@step()
async def send_email(to: str, message: str) -> dict:
    print(f"email to {to}: {message}")
    return {"to": to, "sent": True}


@workflow()
async def send_notification(user_id: str, message: str) -> dict:
    return await send_email(f"{user_id}@example.com", message)
'''

_INIT = '''"""The project's workflows: importing this package registers them."""

from workflows.notifications import send_notification
from workflows.orders import process_order

__all__ = ["process_order", "send_notification"]
'''

_RUN = '''"""Start a run and print its result: python run_example.py (reads the config file)."""

import asyncio

import pyworkflow
from workflows import process_order


async def main() -> None:
    result = await pyworkflow.run(process_order, "order-1", 42.0)
    print(result)


if __name__ == "__main__":
    asyncio.run(main())
'''


@click.command("quickstart")
@click.option("--non-interactive", is_flag=True, help="Ask nothing; use the defaults.")
@click.option("--skip-docker", is_flag=True, help="Accepted; a local project needs no Docker.")
@click.option(
    "--template", type=click.Choice(["basic"]), default="basic", show_default=True,
    help="The project to write.",
)  # fmt: skip
@click.option(
    "--storage",
    "backend",
    type=click.Choice(["sqlite", "file"]),
    default="sqlite",
    show_default=True,
    help="Where runs are stored.",
)
def quickstart(non_interactive: bool, skip_docker: bool, template: str, backend: str) -> None:
    """Write a small project here that runs: a workflows package, a config file, a script."""
    here = Path.cwd()
    targets = [here / "workflows", here / FILE_NAME, here / "run_example.py"]
    taken = [str(p) for p in targets if p.exists()]
    if taken:
        raise click.ClickException(f"{', '.join(taken)} exist already; nothing was written")
    package = here / "workflows"
    package.mkdir()
    _write(package / "__init__.py", _INIT)
    _write(package / "orders.py", _ORDERS)
    _write(package / "notifications.py", _NOTIFICATIONS)
    _write(here / FILE_NAME, _config_text("workflows", backend, None))
    _write(here / "run_example.py", _RUN)
    click.echo(
        "wrote workflows/ (process_order, send_notification), pyworkflow.config.yaml and "
        "run_example.py. Try:\n"
        "  python run_example.py\n"
        "  pyworkflow workflows run process_order --arg order_id=o-2 --arg amount=10\n"
        "  pyworkflow runs list"
    )
