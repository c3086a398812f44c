"""``pyworkflow setup --check``: is this directory ready to run workflows? It changes nothing.

Looks, in order, at ``pyworkflow.config.yaml`` (read and valid), the workflow modules (they
import, and register workflows), the storage (it opens; nothing is created or migrated), and,
when the executor is Celery, the broker (it answers). One line per check, ``ok`` or what is
wrong; exit 1 when any failed.
"""

from __future__ import annotations

import os
import sys

import click

from pyworkflow import config, config_file, registry
from pyworkflow.cli.bridge import run_command
from pyworkflow.cli.session import session
from pyworkflow.exceptions import PyWorkflowError
from pyworkflow.storage import SQLiteStorage, storage_from_url

__all__ = ["check_setup"]


def check_setup() -> None:
    """Print each check's outcome; exit 1 if one failed."""
    failed = 0
    # As a worker does: the project's modules are found relative to where it runs.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())

    def report(what: str, problem: str | None, detail: str = "") -> None:
        nonlocal failed
        failed += problem is not None
        status = "ok" if problem is None else f"FAILED: {problem}"
        click.echo(f"{what:<10} {status}{f' ({detail})' if detail and not problem else ''}")

    try:
        found = config_file.load()
        report("config", None, str(found.path) if found.path else "no pyworkflow.config.yaml")
    except PyWorkflowError as exc:
        report("config", str(exc))
    try:
        modules = config.configured_modules()
        registry.import_modules(modules)
        # Built-in workflows (pyworkflow.stream ...) are not the project's.
        names = [n for n in registry.workflow_names() if not n.startswith("pyworkflow.")]
        problem = None if names else "no workflows registered: set module: in the file"
        report("modules", problem, f"{', '.join(modules)}: {len(names)} workflows")
    except PyWorkflowError as exc:
        report("modules", str(exc))
    try:
        url = config.storage_url()
        store = storage_from_url(url)
        if isinstance(store, SQLiteStorage) and not os.path.exists(store.path):
            report("storage", None, f"{url}: not created yet; a worker creates it")
        else:
            problem = run_command(_open_storage())
            report("storage", problem, url)
    except PyWorkflowError as exc:
        report("storage", str(exc))
    try:
        executor = config.executor_name()
    except PyWorkflowError as exc:
        report("executor", str(exc))
        executor = "local"
    if executor == "celery":
        report("broker", _broker_problem(), config.broker() or "PYWORKFLOW_BROKER / default")
    else:
        report("executor", None, "local: runs execute in pyworkflow processes, no broker")
    if failed:
        raise SystemExit(1)


async def _open_storage() -> str | None:
    try:
        async with session(None):
            return None
    except PyWorkflowError as exc:
        return str(exc)


def _broker_problem() -> str | None:
    try:
        from kombu.connection import Connection

        from pyworkflow.executors.celery.broker import broker_url
    except ImportError as exc:
        return f"Celery is not installed ({exc}); pip install 'pyworkflow-durable[celery]'"
    url = config.broker() or broker_url()
    try:
        with Connection(url, connect_timeout=3) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # any driver error: the broker does not answer
        return f"{url} does not answer: {exc}"
    return None
