"""The migrations and schema.py cannot drift: a database built by the migrations is schema.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from pyworkflow.storage import migrate
from pyworkflow.storage.schema import metadata


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
    uniques = inspector.get_unique_constraints("runs")
    assert [(u["name"], u["column_names"]) for u in uniques] == [
        ("uq_runs_idempotency_key", ["idempotency_key"])
    ]


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
    assert list((directory / "versions").glob("0001_*.py"))


def test_upgrading_an_up_to_date_database_changes_nothing(migrated: sa.Connection) -> None:
    with migrated.begin():
        migrate.upgrade_to_head(migrated)
    context = MigrationContext.configure(migrated)
    assert context.get_current_revision() == migrate.HEAD_REVISION
    assert compare_metadata(context, metadata) == []
