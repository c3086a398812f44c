"""The migrations and schema.py cannot drift: a database built by the migrations is schema.py."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from pyworkflow.events import EventType, HookStatus
from pyworkflow.storage import Storage
from pyworkflow.storage.records import AppendWrite, NewEvent, NewHook, NewRun, StepLease
from pyworkflow.storage.sql import migrate
from pyworkflow.storage.sql.schema import metadata
from pyworkflow.storage.sqlite import SQLiteStorage
from workers import cli, subprocess_env


@pytest.fixture
def migrated(tmp_path: Path) -> Iterator[sa.Connection]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'migrated.db'}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        migrate.upgrade_to_head(conn)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def test_the_migrations_build_exactly_schema_py(migrated: sa.Connection) -> None:
    context = MigrationContext.configure(migrated, opts={"compare_type": True})
    assert compare_metadata(context, metadata) == []


def test_the_migrations_build_the_same_indexes_and_constraints(migrated: sa.Connection) -> None:
    inspector = sa.inspect(migrated)
    for table in metadata.sorted_tables:
        built = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes(table.name)}
        declared = {ix.name: [c.name for c in ix.columns] for ix in table.indexes}
        assert built == declared, table.name
        primary_key = inspector.get_pk_constraint(table.name)
        assert primary_key["constrained_columns"] == [c.name for c in table.primary_key]
    uniques = {
        table: [(u["name"], u["column_names"]) for u in inspector.get_unique_constraints(table)]
        for table in ("runs", "hooks")
    }
    assert uniques == {
        "runs": [("uq_runs_idempotency_key", ["idempotency_key"])],
        "hooks": [("uq_hooks_run_id_hook_id", ["run_id", "hook_id"])],
    }


def test_the_database_records_the_head_revision(migrated: sa.Connection) -> None:
    assert migrate.current_revision(migrated, "test") == migrate.HEAD_REVISION


def test_the_known_revisions_are_the_scripts_history() -> None:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    scripts = ScriptDirectory.from_config(config)
    assert scripts.get_heads() == [migrate.HEAD_REVISION]
    history = [rev.revision for rev in scripts.walk_revisions()]  # newest first
    assert tuple(reversed(history)) == migrate.REVISIONS


def test_the_migrations_ship_inside_the_package() -> None:
    directory = migrate.MIGRATIONS_DIR
    assert directory.parent == Path(migrate.__file__).parent
    assert (directory / "env.py").is_file()
    assert (directory / "script.py.mako").is_file()
    for revision in migrate.REVISIONS:
        assert list((directory / "versions").glob(f"{revision}_*.py"))


def test_upgrading_an_up_to_date_database_changes_nothing(migrated: sa.Connection) -> None:
    with migrated.begin():
        migrate.upgrade_to_head(migrated)
    context = MigrationContext.configure(migrated)
    assert context.get_current_revision() == migrate.HEAD_REVISION
    assert compare_metadata(context, metadata) == []


# --- upgrading a database that an earlier pyworkflow made ---------------------------------------

T0 = 1_700_000_000.0


def upgrade_to(conn: sa.Connection, revision: str) -> None:
    """Migrate ``conn``'s database to ``revision`` only, as that older pyworkflow did."""
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


def old_run_rows(conn: sa.Connection) -> None:
    """A pending run and its first event, as revision 0001's columns hold them."""
    conn.execute(
        sa.text(
            "INSERT INTO runs (run_id, workflow_name, status, args, created_at, updated_at, "
            "wake_at, last_seq, signal_seq, recovery_count, cancel_requested) "
            "VALUES ('old-1', 'wf', 'pending', '[1]', :t, :t, :t, 1, 0, 0, false)"
        ),
        {"t": T0},
    )
    conn.execute(
        sa.text(
            "INSERT INTO events (run_id, seq, type, payload, created_at) "
            "VALUES ('old-1', 1, 'workflow_started', '{}', :t)"
        ),
        {"t": T0},
    )


async def use_the_upgraded_run(storage: Storage) -> None:
    """The old run reads back, runs, and creates a hook and a child in one append."""
    old = await storage.get_run("old-1")
    assert old is not None
    assert old.args == [1]
    assert (old.parent_close_policy, old.continued_from, old.continued_to) == (None, None, None)
    assert old.queue == "pyworkflow"  # runs from before queues belong to the default queue
    (claimed,) = await storage.claim_runs(owner="w1", now=T0, lease_expires_at=T0 + 60, limit=1)
    assert claimed.run_id == "old-1"
    child = NewRun("child-1", "wf", [], {}, now=T0 + 1, parent_run_id="old-1")
    hook = NewHook(token_hash="ab" * 32, hook_id="hook:approval#1", name="approval")
    await storage.append(
        AppendWrite(
            run_id="old-1",
            owner="w1",
            expected_seq=1,
            events=[NewEvent(EventType.HOOK_CREATED, {"v": 1})],
            now=T0 + 1,
            hooks=[hook],
            new_runs=[child],
        )
    )
    assert [r.run_id for r in await storage.list_runs(parent_run_id="old-1")] == ["child-1"]
    stored = await storage.get_hook("ab" * 32)
    assert stored is not None
    assert (stored.run_id, stored.status) == ("old-1", HookStatus.WAITING)


@pytest.mark.slow  # the CLI in a process of its own
async def test_db_upgrade_brings_a_revision_0001_database_to_head(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        upgrade_to(conn, "0001")
        old_run_rows(conn)
    engine.dispose()

    upgrade = await asyncio.to_thread(
        subprocess.run,
        cli("db", "upgrade", "--storage", f"sqlite:///{path}"),
        env=subprocess_env(Path.cwd()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    assert f"revision {migrate.HEAD_REVISION}" in upgrade.stdout

    with engine.connect() as conn:
        assert migrate.current_revision(conn, "test") == migrate.HEAD_REVISION
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    engine.dispose()
    storage = SQLiteStorage(str(path), create=False, auto_upgrade=False)  # no migration left
    try:
        await use_the_upgraded_run(storage)
    finally:
        await storage.close()


async def test_opening_a_revision_0002_database_upgrades_it_to_take_step_leases(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        upgrade_to(conn, "0002")
        old_run_rows(conn)
    engine.dispose()

    storage = SQLiteStorage(str(path))  # auto_upgrade: opening migrates
    try:
        taken = await storage.acquire_step(
            "old-1", "s#1", attempt=1, owner="w1", now=T0, lease_expires_at=T0 + 60
        )
        assert taken == StepLease("old-1", "s#1", 1, "w1", T0 + 60, 1)
        await use_the_upgraded_run(storage)
    finally:
        await storage.close()

    with engine.connect() as conn:
        assert migrate.current_revision(conn, "test") == migrate.HEAD_REVISION
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    engine.dispose()


async def test_opening_a_revision_0003_database_puts_its_runs_in_the_default_queue(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        upgrade_to(conn, "0003")
        old_run_rows(conn)
    engine.dispose()

    storage = SQLiteStorage(str(path))  # auto_upgrade: opening migrates
    try:
        other = await storage.claim_runs(
            owner="w1", now=T0, lease_expires_at=T0 + 60, limit=1, queues=["billing"]
        )
        assert other == []
        (claimed,) = await storage.claim_runs(
            owner="w1", now=T0, lease_expires_at=T0 + 60, limit=1, queues=["pyworkflow"]
        )
        assert (claimed.run_id, claimed.queue) == ("old-1", "pyworkflow")
    finally:
        await storage.close()
