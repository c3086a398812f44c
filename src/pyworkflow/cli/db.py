"""``pyworkflow db``: a database's schema (``upgrade``), and moving runs to another (``copy``).

``db upgrade`` brings a database's schema to this pyworkflow's version. The storage upgrades
the way it does when it opens with ``auto_upgrade=True``: under the database's write lock
(SQLite) or an advisory lock (PostgreSQL), so a worker opening the database at the same moment
does not migrate it too, through ``storage.sql.migrate.upgrade_to_head``, in one transaction.
A fresh database gets the whole schema (a missing PostgreSQL database is created first).

``db copy SRC DST`` copies every run, with its log, hooks and step leases, from one storage to
another: start on SQLite, move to PostgreSQL for production without losing the runs in flight.
It renders ``pyworkflow.storage.copy_runs`` (what it keeps and refuses is said there): the
destination is created and migrated when missing and must hold none of the runs; the source
is only read (a missing SQLite file is an error, not an empty source). Stop the workers on the
source first: a run that moves during the copy is copied again, one that keeps moving fails
the copy. Then start the workers on the destination; runs in flight continue there, hook
tokens already handed out still resume their hooks, timers fire at their times.

Example:
    .. code-block:: console

        $ pyworkflow db copy sqlite:///app.db postgresql://app@db.internal/app
        copied 1042 runs (18211 events, 97 hooks, 0 step leases) from sqlite:///app.db to ...
        $ pyworkflow db copy sqlite:///app.db postgresql://app@db.internal/app --json
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from typing import Any

import click

from pyworkflow.cli.bridge import fail, run_command
from pyworkflow.cli.json_output import emit
from pyworkflow.cli.options import json_option, storage_option
from pyworkflow.cli.session import SchemaOwner
from pyworkflow.config import storage_url
from pyworkflow.storage import (
    CopyReport,
    MemoryStorage,
    SQLiteStorage,
    Storage,
    copy_runs,
    storage_from_url,
)
from pyworkflow.storage.sql.migrate import HEAD_REVISION

__all__ = ["db"]

_LINE_EVERY = 5.0  # seconds between two progress lines off a terminal


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@storage_option
def upgrade(storage: str | None) -> None:
    """Create or migrate the schema of the storage at URL to this version's."""
    url = storage_url(storage)
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


@db.command("copy")
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=5000),
    default=200,
    show_default=True,
    metavar="N",
    help="Runs read and written per transaction.",
)
@json_option
def copy(source: str, destination: str, batch_size: int, as_json: bool) -> None:
    """Copy every run from storage SRC to storage DST (URLs), e.g. SQLite to PostgreSQL.

    DST is created when missing and must hold none of the runs. Stop SRC's workers first, then
    start workers on DST: runs in flight continue there, old hook tokens still work.
    """
    # The source is only read: nothing created or migrated there.
    src = _opened_as(source, "SRC", create=False)
    dst = _opened_as(destination, "DST", create=True)
    if src.url == dst.url:
        fail(f"SRC and DST are the same storage ({src.url}); name another database as DST")
    report = run_command(_copy(src, dst, batch_size, quiet=as_json))
    if as_json:
        emit({**dataclasses.asdict(report), "recopied": list(report.recopied)})
        return
    click.echo(
        f"copied {_count(report.runs, 'run')} ({_count(report.events, 'event')}, "
        f"{_count(report.hooks, 'hook')}, {_count(report.step_leases, 'step lease')}) "
        f"from {report.source} to {report.destination} in {report.seconds:.1f}s"
    )
    if report.stream_runs:
        click.echo(
            f"with {_count(report.stream_runs, 'stream run')} "
            f"({_count(report.signals, 'signal')}): they go on where they were"
        )
    if report.leases_dropped:
        click.echo(
            f"{_count(report.leases_dropped, 'lease')} held by workers on the source "
            "dropped: those runs are free to claim on the destination",
        )
    if report.recopied:
        click.echo(f"{_count(len(report.recopied), 'run')} changed during the copy: copied again")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _opened_as(url: str, role: str, *, create: bool) -> Storage:
    """The storage SRC or DST names; ``create``: create and migrate it when it has to be."""
    store = storage_from_url(url)
    if isinstance(store, MemoryStorage):
        fail(
            f"{role} {url!r} is a memory storage, which lives inside one process; copy a "
            "test's runs in Python: `await pyworkflow.storage.copy_runs(env.storage, DST)`"
        )
    if not create and isinstance(store, SQLiteStorage) and not os.path.exists(store.path):
        fail(f"no database at {store.url!r} ({role}): check the path")
    if isinstance(store, SchemaOwner):
        store.create = store.auto_upgrade = create
    return store


async def _copy(src: Storage, dst: Storage, batch_size: int, *, quiet: bool) -> CopyReport:
    """Copy, showing progress on stderr: a bar on a terminal, else a line now and then.

    Off a terminal (CI logs, a pipe) a line at most every few seconds, and the last one.
    """
    with contextlib.ExitStack() as stack:
        shown: dict[str, Any] = {"line_at": time.monotonic()}

        def progress(done: int, total: int) -> None:
            if quiet:
                return
            if sys.stderr.isatty():
                bar = shown.get("bar")
                if bar is None:
                    bar = shown["bar"] = stack.enter_context(
                        click.progressbar(length=total, label="copying runs", file=sys.stderr)
                    )
                bar.length = total
                bar.update(done - bar.pos)
            elif done == total or time.monotonic() - shown["line_at"] >= _LINE_EVERY:
                shown["line_at"] = time.monotonic()
                click.echo(f"pyworkflow: copied {done}/{total} runs", err=True)

        try:
            return await copy_runs(src, dst, batch_size=batch_size, progress=progress)
        finally:
            await src.close()
            await dst.close()
