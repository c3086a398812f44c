"""`pyworkflow streams list|show|emit`, as a user runs them, on a seeded SQLite file.

The stream run is written straight through the storage API (a stream run, two signals, a
batch delivered), as a driver would have left it; the CLI runs in this process.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inprocess_cli import InProcessCli

from pyworkflow import emit, run_stream_workflow, stream_step, stream_workflow, workflow
from pyworkflow.events import StreamStepStatus
from pyworkflow.serialization import Codec
from pyworkflow.storage import storage_from_url
from pyworkflow.storage.streams import NewSignal, StreamStore, SubscriptionOutcome, SubscriptionSpec
from pyworkflow.streams import get_current_signal, save_checkpoint, terminate
from pyworkflow.testing import WorkflowEnvironment


async def seed(url: str) -> None:
    storage = storage_from_url(url)
    await storage.open()
    try:
        assert isinstance(storage, StreamStore)
        specs = [SubscriptionSpec("watcher", "ops", ("alert",))]
        await storage.open_stream_run("ops-1", stream="ops", run_id="run_x", subscriptions=specs,
                                      now=1_700_000_000.0)  # fmt: skip
        await storage.take_stream_batch("ops-1", batch=1, outcomes=[], now=1_700_000_001.0)
        for n in (1, 2):
            payload = Codec().encode({"n": n})
            await storage.emit_signal(NewSignal("ops-1", "ops", "alert", payload, f"g{n}", 1.7e9))
        done = SubscriptionOutcome("watcher", StreamStepStatus.WAITING)
        await storage.take_stream_batch("ops-1", batch=2, outcomes=[done], now=1_700_000_002.0)
    finally:
        await storage.close()


def test_list_show_and_emit(tmp_path: Path) -> None:
    cli = InProcessCli(tmp_path / "streams.db")
    cli("db", "upgrade")
    cli.run(seed)
    listed = cli.json("streams", "list")["stream_runs"]
    assert [(r["stream_run_id"], r["stream"], r["signals"], r["status"]) for r in listed] == [
        ("ops-1", "ops", 2, "running")
    ]
    shown = cli.json("streams", "show", "ops-1")
    assert shown["run_id"] == "run_x"
    assert [
        (s["step"], s["status"], s["cursor"], s["deliveries"]) for s in shown["subscriptions"]
    ] == [("watcher", "running", 1, 2)]
    assert [(g["seq"], g["payload"], g["delivered_to"]) for g in shown["latest_signals"]] == [
        (1, {"n": 1}, ["watcher"]),
        (2, {"n": 2}, []),
    ]
    text = cli("streams", "show", "ops-1").output
    assert "watcher  running  cursor=1  deliveries=2" in text
    emitted = cli.json(
        "streams", "emit", "ops-1", "alert", "--stream", "ops", "--payload", '{"n": 3}'
    )
    assert emitted == {"stream_run_id": "ops-1", "seq": 3}
    assert cli.json("streams", "list")["stream_runs"][0]["signals"] == 3


def test_emit_and_show_refuse_an_unknown_stream_run(tmp_path: Path) -> None:
    cli = InProcessCli(tmp_path / "streams.db")
    cli("db", "upgrade")
    refused = cli("streams", "emit", "nowhere", "alert", "--stream", "ops")
    assert refused.exit_code == 2
    assert "no stream run with id 'nowhere'" in refused.stderr
    assert cli("streams", "show", "nowhere").exit_code == 2
    bad = cli("streams", "emit", "nowhere", "alert", "--stream", "ops", "--payload", "{nope")
    assert (bad.exit_code, "not valid JSON" in bad.stderr) == (2, True)


@stream_workflow(name="tc_watch")
async def tc_watch() -> None:
    await emit("tc_watch", "alert", {"n": 0})


@stream_step(stream="tc_watch", signals=["alert"])
async def tc_watcher() -> None:
    signal = await get_current_signal()
    if signal is not None:
        await save_checkpoint(signal.payload)


@workflow(name="tc_run_watch")
async def tc_run_watch(stream_run_id: str) -> str:
    return (await run_stream_workflow(tc_watch, stream_run_id=stream_run_id)).status


async def left_waiting(url: str, parent: Any, stream_run_id: str, batches: int) -> str:
    """The id of the run driving ``parent``'s stream run, once it has taken ``batches`` batches.

    A real stream run, left waiting in the file.
    """
    async with WorkflowEnvironment(storage=url) as env:
        await env.start(parent, stream_run_id)
        store = env.storage
        assert isinstance(store, StreamStore)
        for _ in range(400):
            await env.advance(0)
            record = await store.get_stream_run(stream_run_id)
            if record is not None and record.last_batch >= batches:
                return record.run_id
            await asyncio.sleep(0.005)
    raise AssertionError(f"the stream run {stream_run_id} never took {batches} batches")


async def drive(url: str) -> str:
    """A real stream run left waiting in the file; the id of the run driving it."""
    return await left_waiting(url, tc_run_watch, "watch-1", 3)


def test_runs_show_of_a_driving_run_shows_its_stream_run(tmp_path: Path) -> None:
    cli = InProcessCli(tmp_path / "watch.db")
    driver = cli.run(drive)
    shown = cli.json("runs", "show", driver)
    stream = shown["stream_run"]
    assert (stream["stream_run_id"], stream["stream"]) == ("watch-1", "tc_watch")
    assert stream["signals"] == 1
    assert [(s["step"], s["status"], s["checkpoint"]) for s in stream["subscriptions"]] == [
        ("tc_watcher", "waiting", {"n": 0})
    ]
    assert [g["delivered_to"] for g in stream["latest_signals"]] == [["tc_watcher"]]
    text = cli("runs", "show", driver).output
    assert "stream run watch-1 of stream 'tc_watch': running" in text
    assert "#1  alert  -> tc_watcher" in text


@stream_workflow(name="tc_once")
async def tc_once() -> None:
    await emit("tc_once", "go", {"n": 1})


@stream_step(stream="tc_once", signals=["go"])
async def tc_goer() -> None:
    if await get_current_signal() is not None:
        await terminate()


@workflow(name="tc_run_once")
async def tc_run_once(stream_run_id: str) -> str:
    return (await run_stream_workflow(tc_once, stream_run_id=stream_run_id)).status


async def ended_streams(url: str) -> None:
    """Two stream runs that ended long ago (the virtual clock starts in 2020)."""
    async with WorkflowEnvironment(storage=url, start_time=datetime(2020, 1, 1, tzinfo=UTC)) as env:
        for stream_run_id in ("once-1", "once-2"):
            assert await env.run(tc_run_once, stream_run_id) == "completed"


def stream_rows(db: Path) -> dict[str, int]:
    with closing(sqlite3.connect(db)) as connection:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("stream_runs", "stream_subscriptions", "stream_signals",
                          "stream_deliveries")
        }  # fmt: skip


def test_runs_prune_deletes_the_stream_runs_of_the_runs_it_deletes(tmp_path: Path) -> None:
    cli = InProcessCli(tmp_path / "once.db")
    cli.run(ended_streams)
    assert [r["status"] for r in cli.json("streams", "list")["stream_runs"]] == ["completed"] * 2
    assert stream_rows(tmp_path / "once.db") == {
        "stream_runs": 2, "stream_subscriptions": 2, "stream_signals": 2, "stream_deliveries": 4
    }  # fmt: skip

    pruned = cli.json("runs", "prune", "--older-than", "1d")
    assert pruned["deleted"] == 4  # two parents, two driving runs

    assert cli.json("streams", "list")["stream_runs"] == []
    assert cli("streams", "show", "once-1").exit_code == 2
    assert stream_rows(tmp_path / "once.db") == dict.fromkeys(stream_rows(tmp_path / "once.db"), 0)
