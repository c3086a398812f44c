"""``pyworkflow db upgrade``: bring a database's schema to this pyworkflow's version.

The storage upgrades the way it does when it opens with ``auto_upgrade=True``: under the
database's write lock (SQLite) or an advisory lock (PostgreSQL), so a worker opening the
database at the same moment does not migrate it too, through
``storage.sql.migrate.upgrade_to_head``, in one transaction. A fresh database gets the whole
schema (a missing PostgreSQL database is created first).
"""

from __future__ import annotations

import os

import click

from pyworkflow.cli.bridge import fail, run_command
from pyworkflow.cli.options import storage_option
from pyworkflow.cli.session import SchemaOwner
from pyworkflow.config import DEFAULT_STORAGE
from pyworkflow.storage import storage_from_url
from pyworkflow.storage.sql.migrate import HEAD_REVISION

__all__ = ["db"]


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@storage_option
def upgrade(storage: str | None) -> None:
    """Create or migrate the schema of the storage at URL to this version's."""
    url = storage or os.environ.get("PYWORKFLOW_STORAGE") or DEFAULT_STORAGE
    run_command(_upgrade(url))


async def _upgrade(url: str) -> None:
    store = storage_from_url(url)
    if not isinstance(store, SchemaOwner):
        fail(f"storage {store.url!r} has no schema to upgrade; only SQL storages do")
    store.create = True
    store.auto_upgrade = True
    await store.open()
    await store.close()
    click.echo(f"{store.url}: schema at revision {HEAD_REVISION} (current)")
