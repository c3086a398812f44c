"""A cancelled stream run as a user sees it: `runs cancel`, then `streams show` and `runs show`.

A real stream run waits in a SQLite file; `pyworkflow runs cancel` asks its driving run to
stop, a worker (the test environment over the same file) carries the cancel out, and the
commands then show the stream run cancelled with its subscription, while `streams emit` into
it is refused (exit 2) and stores nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from inprocess_cli import InProcessCli
from test_streams_cli import left_waiting

from pyworkflow import RunStatus, run_stream_workflow, stream_step, stream_workflow, workflow
from pyworkflow.streams import get_current_signal
from pyworkflow.testing import WorkflowEnvironment


@stream_workflow(name="tce_watch")
async def tce_watch() -> None:
    """Alerts come from outside."""


@stream_step(stream="tce_watch", signals=["alert"])
async def tce_watcher() -> None:
    await get_current_signal()


@workflow(name="tce_run_watch")
async def tce_run_watch(stream_run_id: str) -> str:
    return (await run_stream_workflow(tce_watch, stream_run_id=stream_run_id)).status


async def waiting_stream_run(url: str) -> str:
    """A stream run left waiting in the file; the id of the run driving it."""
    return await left_waiting(url, tce_run_watch, "watch-end", 2)


async def carry_out_cancel(url: str, driver: str) -> None:
    """A worker over the file: it runs the driving run, which sees its cancel."""
    async with WorkflowEnvironment(storage=url) as env:
        for _ in range(400):
            await env.advance(0)
            if (await env.get_run(driver)).status is RunStatus.CANCELLED:
                return
            await asyncio.sleep(0.005)
    raise AssertionError(f"run {driver} never ended cancelled")


def test_a_cancelled_driving_run_shows_a_cancelled_stream_run(tmp_path: Path) -> None:
    cli = InProcessCli(tmp_path / "ends.db")
    driver = cli.run(waiting_stream_run)
    cancelled = cli.json("runs", "cancel", driver, "--reason", "ops says stop")
    assert cancelled["cancel_requested"] is True
    cli.run(lambda url: carry_out_cancel(url, driver))
    shown = cli.json("streams", "show", "watch-end")
    assert (shown["status"], shown["run_id"]) == ("cancelled", driver)
    assert [(s["step"], s["status"], s["detail"]) for s in shown["subscriptions"]] == [
        ("tce_watcher", "cancelled", "stream run cancelled: ops says stop")
    ]
    assert cli.json("streams", "list")["stream_runs"][0]["status"] == "cancelled"
    text = cli("runs", "show", driver).output
    assert "stream run watch-end of stream 'tce_watch': cancelled" in text
    assert "tce_watcher  cancelled" in text
    refused = cli("streams", "emit", "watch-end", "alert", "--stream", "tce_watch")
    assert refused.exit_code == 2
    assert "stream run 'watch-end' has ended (cancelled)" in refused.stderr
    assert cli.json("streams", "show", "watch-end")["signals"] == 0
