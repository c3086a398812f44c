"""Commands that only read never create a database, a file or a schema, nor migrate one.

What a user checks after a typo in ``--storage``: the command exits 2 with one line naming the
database and saying how to create one (``pyworkflow db upgrade --storage URL``), and nothing
appeared: no SQLite file, no PostgreSQL database or schema (asked of the server through the
admin URL), and a database of an older schema revision is left at its revision. The CLI runs in
this process (click's CliRunner), on the modules of ``familycli_flows``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from inprocess_cli import Family, InProcessCli

from postgres_server import PostgresServer
from pyworkflow.storage.sql.migrate import current_revision, upgrade_to_head

READ_ONLY = [
    ["runs", "list"],
    ["runs", "show", "run_x"],
    ["runs", "history", "run_x"],
    ["runs", "children", "run_x"],
    ["runs", "chain", "run_x"],
    ["runs", "export", "--out", "{tmp}/exported"],
    ["hooks", "list"],
    ["replay", "-m", "familycli_flows"],
]


def commands(tmp_path: Path) -> list[list[str]]:
    return [[arg.format(tmp=tmp_path) for arg in args] for args in READ_ONLY]


def one_line_error(result: object) -> str:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("pyworkflow: error: "), stderr
    return lines[0]


def test_a_missing_sqlite_file_is_an_error_and_stays_missing(tmp_path: Path) -> None:
    cli = InProcessCli(tmp_path / "typo" / "app.db")
    for args in commands(tmp_path):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        line = one_line_error(result)
        assert str(tmp_path / "typo" / "app.db") in line, line
        assert f"pyworkflow db upgrade --storage {cli.url}" in line, line
        assert list(tmp_path.iterdir()) == [], args


def test_an_older_sqlite_schema_is_not_migrated_by_a_read(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        upgrade_to_head(conn)
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0002'"))
        conn.execute(sa.text("DROP TABLE step_leases"))  # what 0003 adds
    cli = InProcessCli(db)
    for args in commands(tmp_path):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        line = one_line_error(result)
        assert "pyworkflow db upgrade" in line, line
        with engine.connect() as conn:
            assert current_revision(conn, str(db)) == "0002", args
    engine.dispose()


async def databases(server: PostgresServer) -> set[str]:
    conn = await asyncpg.connect(server.admin_url)
    try:
        return {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()


async def schemas(server: PostgresServer) -> set[str]:
    conn = await asyncpg.connect(server.url)
    try:
        rows = await conn.fetch("SELECT schema_name FROM information_schema.schemata")
        return {r["schema_name"] for r in rows}
    finally:
        await conn.close()


def test_a_missing_postgres_database_is_an_error_and_is_not_created(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    missing = f"pwtest_typo_{os.getpid()}"
    base, _, _ = postgres_server.url.rpartition("/")
    cli = InProcessCli(tmp_path / "unused.db")
    cli.url = f"{base}/{missing}"
    for args in commands(tmp_path):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        line = one_line_error(result)
        assert repr(missing) in line, line
        assert "pyworkflow db upgrade --storage" in line, line
        assert missing not in asyncio.run(databases(postgres_server)), args
        assert list(tmp_path.iterdir()) == [], args


def test_a_missing_postgres_schema_is_an_error_and_is_not_created(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    cli = InProcessCli(tmp_path / "unused.db")
    cli.url = postgres_server.fresh_url()
    schema = cli.url.rpartition("schema=")[2]
    for args in commands(tmp_path):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "pyworkflow db upgrade --storage" in one_line_error(result)
        assert schema not in asyncio.run(schemas(postgres_server)), args


def test_workflows_list_and_info_take_storage(family: Family) -> None:
    listed = family.cli.json("workflows", "list", "-m", "familycli_flows")
    assert "familycli_review" in [w["name"] for w in listed["workflows"]]
    described = family.cli.json("workflows", "info", "familycli_review", "-m", "familycli_flows")
    assert described["name"] == "familycli_review"


def test_an_exported_folder_replays(family: Family, tmp_path: Path) -> None:
    out = tmp_path / "histories"
    exported = family.cli.json("runs", "export", "--out", str(out))
    assert exported["exported"] >= 10
    (out / "notes.txt").write_text("not a history: only *.json files are read")
    report = family.cli.json("replay", "-m", "familycli_flows", "--file", str(out))
    assert report["replayed"] == exported["exported"]
    assert report["ok"], report
    assert sorted(r["run_id"] for r in report["runs"]) == sorted(
        Path(f).stem for f in exported["files"]
    )


def test_a_folder_without_histories_is_a_mistake(family: Family, tmp_path: Path) -> None:
    result = family.cli("replay", "-m", "familycli_flows", "--file", str(tmp_path))
    assert result.exit_code == 2, result.output
    line = one_line_error(result)
    assert str(tmp_path) in line
    assert "*.json" in line
