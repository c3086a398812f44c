"""`pyworkflow runs list|show` on a database with damaged cells: the damage shown, no traceback.

The database holds sound runs and runs whose cells were damaged behind pyworkflow's back (plain
SQL: tests/corrupt_cells.py): arguments cut short, a result cut short, an event payload cut
short, and a wake-up time of 1e20 s (what ``sleep(10**20)`` stored before durations were
bounded) that no datetime can show. Each command exits 0, lists every run, and says which column
of which table is damaged. On SQLite and PostgreSQL, through the real command in this process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from inprocess_cli import InProcessCli

import pyworkflow
from corrupt_cells import TRUNCATED_JSON, add_run, set_cell
from postgres_server import PostgresServer
from pyworkflow.runtime import get_runtime
from pyworkflow.storage import SQLiteStorage, Storage
from pyworkflow.storage.postgres import PostgresStorage


@pyworkflow.workflow(name="crcli_answer")
async def answer(n: int) -> dict[str, int]:
    return {"answer": n}


async def _seed(url: str) -> dict[str, str]:
    pyworkflow.configure(storage=url)
    try:
        runtime = await get_runtime()
        ids = {}
        for name in ("sound", "result"):
            ids[name] = await pyworkflow.start(answer, 42)
            await pyworkflow.get_workflow_result(ids[name], timeout=10)
        for name in ("args", "events", "wake"):
            # Of a workflow no process here has: they stay as stored.
            ids[name] = await add_run(runtime.storage, "crcli_elsewhere", 1)
        return ids
    finally:
        await pyworkflow.shutdown()


async def _damage(storage: Storage, ids: dict[str, str]) -> None:
    await set_cell(storage, "runs", "args", TRUNCATED_JSON, run_id=ids["args"])
    await set_cell(storage, "runs", "result", TRUNCATED_JSON, run_id=ids["result"])
    await set_cell(storage, "events", "payload", TRUNCATED_JSON, run_id=ids["events"], seq=1)
    await set_cell(storage, "runs", "status", "suspended", run_id=ids["wake"])
    await set_cell(storage, "runs", "wake_at", 1e20, run_id=ids["wake"])


@pytest.fixture(params=["sqlite", "postgres"])
def damaged(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[InProcessCli, dict[str, str]]:
    """The in-process CLI on a seeded database, and the ids of its runs by what is damaged."""
    storage: Storage
    if request.param == "sqlite":
        cli = InProcessCli(tmp_path / "damaged.db")
        storage = SQLiteStorage(str(cli.db))
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        cli = InProcessCli(tmp_path / "unused.db", url=server.fresh_url())
        storage = PostgresStorage(cli.url)
    ids: dict[str, str] = cli.run(_seed)
    asyncio.run(_damage(storage, ids))
    return cli, ids


def test_runs_list_lists_every_run_and_names_the_damage(
    damaged: tuple[InProcessCli, dict[str, str]],
) -> None:
    cli, ids = damaged
    table = cli("runs", "list")
    assert table.exit_code == 0, table.output
    for run_id in ids.values():
        assert run_id in table.stdout
    assert f"corrupt runs.args of run {ids['args']!r}" in table.stdout
    assert f"corrupt runs.result of run {ids['result']!r}" in table.stdout
    assert f"runs.wake_at of run {ids['wake']!r}" in table.stdout

    page: dict[str, Any] = cli.json("runs", "list")
    by_id = {r["run_id"]: r for r in page["runs"]}
    assert set(by_id) == set(ids.values())
    assert by_id[ids["sound"]]["damage"] is None
    assert by_id[ids["events"]]["damage"] is None  # its row is sound; its log is not read here
    assert "runs.args" in by_id[ids["args"]]["damage"]
    assert "runs.result" in by_id[ids["result"]]["damage"]
    assert "1e+20" in by_id[ids["wake"]]["damage"]
    assert by_id[ids["wake"]]["wake_at"].startswith("9999-12-31")


def test_runs_show_prints_a_run_with_a_damaged_cell(
    damaged: tuple[InProcessCli, dict[str, str]],
) -> None:
    cli, ids = damaged
    shown = cli("runs", "show", ids["args"])
    assert shown.exit_code == 0, shown.output
    assert "damaged" in shown.stdout
    assert f"corrupt runs.args of run {ids['args']!r}" in shown.stdout
    assert "workflow_started" in shown.stdout  # the log is sound: the timeline still shows

    result = cli.json("runs", "show", ids["result"])
    assert result["status"] == "completed"
    assert result["result"] is None
    assert "runs.result" in result["damage"]
    assert result["args"] == {"args": [42], "kwargs": {}}


def test_runs_show_prints_a_run_whose_log_cannot_be_read(
    damaged: tuple[InProcessCli, dict[str, str]],
) -> None:
    cli, ids = damaged
    shown = cli("runs", "show", ids["events"])
    assert shown.exit_code == 0, shown.output
    assert f"corrupt events.payload of run {ids['events']!r} (seq 1)" in shown.stdout
    document = cli.json("runs", "show", ids["events"])
    assert document["timeline"] == []
    assert "events.payload" in document["damage"]


def test_runs_show_prints_a_wake_up_time_no_datetime_can_hold(
    damaged: tuple[InProcessCli, dict[str, str]],
) -> None:
    cli, ids = damaged
    shown = cli("runs", "show", ids["wake"])
    assert shown.exit_code == 0, shown.output
    assert "9999-12-31" in shown.stdout
    assert f"runs.wake_at of run {ids['wake']!r}" in shown.stdout
    assert "1e+20" in shown.stdout
