"""`pyworkflow db copy SRC DST` as a user runs it, in this process (click's CliRunner).

The source is a SQLite file seeded through the storage API: a run that ended, one a worker
still holds (its lease must not come along), and one waiting on a hook. The copy goes to
another SQLite file and to PostgreSQL; `pyworkflow runs list` and `runs show` read the copies.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from inprocess_cli import InProcessCli

from postgres_server import PostgresServer
from pyworkflow import emit, run_stream_workflow, stream_step, stream_workflow, workflow
from pyworkflow.cli import main
from pyworkflow.events import EventType, RunStatus, StreamStepStatus
from pyworkflow.storage import AppendWrite, NewEvent, NewRun, SQLiteStorage, storage_from_url
from pyworkflow.storage.records import NewHook
from pyworkflow.streams import (
    get_checkpoint,
    get_current_signal,
    save_checkpoint,
    set_result,
    terminate,
)
from pyworkflow.testing import WorkflowEnvironment

T0 = 1_900_000_000.0
IDS = ["run_ended", "run_leased", "run_hooked"]


def pyworkflow(*args: str) -> Result:
    """The command in this process; the ``pyworkflow`` logger put back after (as InProcessCli)."""
    logger = logging.getLogger("pyworkflow")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


async def seed(path: Path) -> None:
    storage = SQLiteStorage(path)
    for n, run_id in enumerate(IDS):
        run = NewRun(run_id, "billing", {"args": [n], "kwargs": {}}, {"v": 1}, T0 + n)
        await storage.create_run(run)
        (claimed,) = await storage.claim_runs(
            owner="old-worker", now=T0 + n, lease_expires_at=T0 + 999, limit=1, run_ids=[run_id]
        )
        if run_id == "run_leased":
            continue  # still held by the worker on the source
        hooked = run_id == "run_hooked"
        hook = NewHook(hashlib.sha256(b"token").hexdigest(), "hook:approval#1", "approval")
        await storage.append(
            AppendWrite(
                run_id=run_id,
                owner="old-worker",
                expected_seq=claimed.last_seq,
                events=[
                    NewEvent(EventType.HOOK_CREATED, {"hook_id": hook.hook_id, "name": "approval"})
                    if hooked
                    else NewEvent(EventType.WORKFLOW_COMPLETED, {"result": n})
                ],
                now=T0 + n,
                status=RunStatus.SUSPENDED if hooked else RunStatus.COMPLETED,
                result=None if hooked else n,
                hooks=[hook] if hooked else [],
            )
        )
    await storage.close()


@pytest.fixture
def source(tmp_path: Path) -> str:
    asyncio.run(seed(tmp_path / "src.db"))
    return f"sqlite:///{tmp_path / 'src.db'}"


def listed(url: str, tmp_path: Path) -> dict[str, str]:
    document = InProcessCli(tmp_path / "unused.db", url).json("runs", "list")
    return {run["run_id"]: run["status"] for run in document["runs"]}


def test_copy_to_sqlite_then_list_and_show_there(source: str, tmp_path: Path) -> None:
    destination = f"sqlite:///{tmp_path / 'dst.db'}"  # created by the copy
    result = pyworkflow("db", "copy", source, destination, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert {k: document[k] for k in ("runs", "events", "hooks", "leases_dropped", "recopied")} == {
        "runs": 3, "events": 5, "hooks": 1, "leases_dropped": 1, "recopied": []
    }  # fmt: skip
    assert (document["source"], document["destination"]) == (source, destination)
    assert listed(destination, tmp_path) == listed(source, tmp_path) == {
        "run_hooked": "suspended", "run_leased": "pending", "run_ended": "completed"
    }  # fmt: skip
    shown = InProcessCli(tmp_path / "dst.db").json("runs", "show", "run_hooked")
    assert [hook["hook_id"] for hook in shown["waiting_hooks"]] == ["hook:approval#1"]


def test_progress_and_summary_for_people(source: str, tmp_path: Path) -> None:
    result = pyworkflow("db", "copy", source, f"sqlite:///{tmp_path / 'dst.db'}")
    assert result.exit_code == 0, result.output
    assert "pyworkflow: copied 3/3 runs" in result.stderr
    assert result.stdout.startswith("copied 3 runs (5 events, 1 hook, 0 step leases) from ")
    assert "1 lease held by workers on the source dropped" in result.stdout


def test_a_second_copy_is_refused_and_writes_nothing(source: str, tmp_path: Path) -> None:
    destination = f"sqlite:///{tmp_path / 'dst.db'}"
    assert pyworkflow("db", "copy", source, destination).exit_code == 0
    before = listed(destination, tmp_path)
    result = pyworkflow("db", "copy", source, destination)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"pyworkflow: error: cannot copy runs to {destination}: runs ")
    assert "'run_ended', 'run_leased', 'run_hooked' already exist there" in result.stderr
    assert listed(destination, tmp_path) == before


@pytest.mark.parametrize(
    ("src", "dst", "message"),
    [
        ("sqlite:///{tmp}/missing.db", "sqlite:///{tmp}/dst.db", "no database at"),
        ("memory://", "sqlite:///{tmp}/dst.db", "is a memory storage"),
        ("sqlite:///{tmp}/src.db", "memory://", "is a memory storage"),
        ("sqlite:///{tmp}/src.db", "sqlite:///{tmp}/src.db", "the same storage"),
    ],
)
def test_mistakes_are_one_line_and_create_nothing(
    source: str, tmp_path: Path, src: str, dst: str, message: str
) -> None:
    result = pyworkflow("db", "copy", src.format(tmp=tmp_path), dst.format(tmp=tmp_path))
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "dst.db").exists()
    assert not (tmp_path / "missing.db").exists()


def test_copy_to_postgresql(source: str, tmp_path: Path, postgres_server: PostgresServer) -> None:
    destination = str(postgres_server.fresh_url())
    result = pyworkflow("db", "copy", source, destination, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"] == 3
    assert listed(destination, tmp_path) == listed(source, tmp_path)

    async def claimable() -> list[str]:
        storage = storage_from_url(destination)
        try:
            claimed = await storage.claim_runs(
                owner="new-worker", now=T0 + 5, lease_expires_at=T0 + 60, limit=10
            )
        finally:
            await storage.close()
        return sorted(r.run_id for r in claimed)

    # The run the old worker held is free on PostgreSQL at once.
    assert asyncio.run(claimable()) == ["run_leased"]


@stream_workflow(name="dc_watch")
async def dc_watch() -> None:
    await emit("dc_watch", "alert", {"n": 0})


@stream_step(stream="dc_watch", signals=["alert", "stop"])
async def dc_watcher() -> None:
    signal = await get_current_signal()
    if signal is None:
        return
    seen = [*((await get_checkpoint()) or []), signal.payload["n"]]
    await save_checkpoint(seen)
    if signal.signal_type == "stop":
        await set_result(seen)
        await terminate()


@workflow(name="dc_run_watch")
async def dc_run_watch(stream_run_id: str) -> Any:
    return (await run_stream_workflow(dc_watch, stream_run_id=stream_run_id)).get_result(
        "dc_watcher"
    )


async def watching(url: str) -> str:
    """A stream run left waiting in the SQLite file after two signals; its parent's run id."""
    async with WorkflowEnvironment(storage=url) as env:
        parent = await env.start(dc_run_watch, "watch-1")
        await env.advance(0)
        await emit("dc_watch", "alert", {"n": 1}, stream_run_id="watch-1")
        for _ in range(400):
            await env.advance(0)
            subs = await env.storage.list_subscriptions("watch-1")  # type: ignore[attr-defined]
            if subs and subs[0].cursor == 2 and subs[0].status is StreamStepStatus.WAITING:
                return parent
            await asyncio.sleep(0.005)
    raise AssertionError("the stream run never took its signals")


async def finishing(url: str, parent: str) -> Any:
    """On the copy: one more signal, and the stream run ends with every signal seen."""
    async with WorkflowEnvironment(storage=url) as env:
        await env.advance(0)
        await emit("dc_watch", "stop", {"n": 2}, stream_run_id="watch-1")
        return await env.result(parent, timeout=10)


def test_a_stream_run_mid_flight_goes_on_after_a_copy_to_postgresql(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    source_cli = InProcessCli(tmp_path / "streams.db")
    parent = source_cli.run(watching)
    destination = str(postgres_server.fresh_url())
    result = pyworkflow("db", "copy", source_cli.url, destination, "--json")
    assert result.exit_code == 0, result.output
    assert {k: json.loads(result.stdout)[k] for k in ("stream_runs", "signals")} == {
        "stream_runs": 1, "signals": 2
    }  # fmt: skip
    told = pyworkflow("db", "copy", source_cli.url, f"sqlite:///{tmp_path / 'copy.db'}")
    assert "with 1 stream run (2 signals): they go on where they were" in told.stdout
    target_cli = InProcessCli(tmp_path / "unused.db", destination)
    shown = target_cli.json("streams", "show", "watch-1")
    assert shown == source_cli.json("streams", "show", "watch-1")
    assert [
        (s["step"], s["status"], s["cursor"], s["checkpoint"]) for s in shown["subscriptions"]
    ] == [("dc_watcher", "waiting", 2, [0, 1])]
    assert [(g["seq"], g["payload"], g["delivered_to"]) for g in shown["latest_signals"]] == [
        (1, {"n": 0}, ["dc_watcher"]), (2, {"n": 1}, ["dc_watcher"])
    ]  # fmt: skip

    assert target_cli.run(lambda url: finishing(url, parent)) == [0, 1, 2]
    after = target_cli.json("streams", "show", "watch-1")
    assert after["status"] == "completed"
    assert [g["seq"] for g in after["latest_signals"]] == [1, 2, 3]
    # The source was only read: its stream run still waits at its second signal.
    assert source_cli.json("streams", "show", "watch-1")["signals"] == 2
