"""Stream runs in the dashboard, on SQLite and PostgreSQL: the JSON API and the run pages.

A stream run (``dash_sensors``) sums readings: the opening one, one written by another service
whose payload fails the step's schema (stored straight through the storage API, as a process
without the schema would), and one emitted with the public API. What a user checks: the driving
run's JSON and page show the stream, its step's state, cursor, deliveries and result, every
signal with where it went (the bad one refused), and the parent's page links to it.
"""

from __future__ import annotations

import asyncio
import html
import time
from typing import Any

import httpx
from dash_support import TOKEN, Dashboard, settled

import pyworkflow
from pyworkflow import RunStatus, emit
from pyworkflow.events import StreamStepStatus
from pyworkflow.storage import StreamStore
from pyworkflow.storage.streams import NewSignal

STREAM_RUN = "sensors-7"


async def ok(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


async def cursor_at(store: StreamStore, seq: int, within: float = 15.0) -> None:
    """Wait until the stream step has taken every signal up to ``seq`` and waits again."""
    deadline = time.monotonic() + within
    while True:
        subs = await store.list_subscriptions(STREAM_RUN)
        if subs and subs[0].cursor == seq and subs[0].status is StreamStepStatus.WAITING:
            return
        assert time.monotonic() < deadline, f"stream run {STREAM_RUN} still at {subs}"
        await asyncio.sleep(0.02)


async def flowing(dash: Dashboard) -> tuple[str, str]:
    """The parent and the driving run of a stream run that took three signals; it waits."""
    parent = await pyworkflow.start("dash_sensor_job", "7")
    store = dash.storage
    assert isinstance(store, StreamStore)
    await cursor_at(store, 1)
    # Written by a service without the schema: refused when delivered, the step not run.
    await store.emit_signal(
        NewSignal(STREAM_RUN, "dash_sensors", "reading", {"value": "many"}, "other-1", time.time())
    )
    await emit("dash_sensors", "reading", {"value": 41}, stream_run_id=STREAM_RUN)
    await cursor_at(store, 3)
    (driver,) = await dash.storage.list_runs(parent_run_id=parent)
    return parent, driver.run_id


async def test_the_driving_runs_json_has_its_stream_run(dash: Dashboard) -> None:
    parent, driver = await flowing(dash)

    shown = await ok(await dash.reader.get(f"/api/runs/{driver}"))
    stream = shown["stream_run"]
    assert (stream["stream_run_id"], stream["stream"], stream["run_id"]) == (
        STREAM_RUN, "dash_sensors", driver
    )  # fmt: skip
    assert (stream["status"], stream["signals"]) == ("running", 3)
    assert [
        (s["step"], s["status"], s["cursor"], s["deliveries"], s["refused"], s["result"])
        for s in stream["subscriptions"]
    ] == [("dash_summer", "waiting", 3, 4, 1, 42)]
    assert [
        (g["seq"], g["signal_type"], g["payload"], g["delivered_to"], g["refused_by"])
        for g in stream["latest_signals"]
    ] == [
        (1, "reading", {"value": 1}, ["dash_summer"], []),
        (2, "reading", {"value": "many"}, [], ["dash_summer"]),
        (3, "reading", {"value": 41}, ["dash_summer"], []),
    ]
    assert "stream_run" not in await ok(await dash.reader.get(f"/api/runs/{parent}"))
    assert await ok(await dash.reader.get(f"/api/streams/{STREAM_RUN}")) == stream

    listed = await ok(await dash.reader.get("/api/streams?stream=dash_sensors"))
    assert [r["stream_run_id"] for r in listed["stream_runs"]] == [STREAM_RUN]
    assert (await ok(await dash.reader.get("/api/streams?stream=other")))["stream_runs"] == []
    missing = await ok(await dash.reader.get("/api/streams/nowhere"), 404)
    assert missing["error"] == "StreamRunNotFoundError"
    bad = await ok(await dash.reader.get("/api/streams?limit=0"), 400)
    assert "limit='0'" in bad["message"]

    await emit("dash_sensors", "reading", {"value": 0}, stream_run_id=STREAM_RUN)
    await settled(parent, RunStatus.COMPLETED)
    assert await pyworkflow.get_workflow_result(parent) == 42
    ended = await ok(await dash.reader.get(f"/api/streams/{STREAM_RUN}"))
    assert ended["status"] == "completed"
    assert ended["subscriptions"][0]["status"] == "terminated"


async def test_the_run_pages_show_the_stream_run(dash: Dashboard) -> None:
    parent, driver = await flowing(dash)

    page = (await dash.reader.get(f"/runs/{driver}")).text
    assert f'Stream run <span class="mono small">{STREAM_RUN}</span>' in page
    assert 'id="stream-name">dash_sensors</b>' in page
    assert 'id="stream-status">running</span>' in page
    assert "3 signals, " in page
    row = page.split('<tr data-step="dash_summer">', 1)[1].split("</tr>", 1)[0]
    cells = [html.unescape(c.split(">", 1)[1]) for c in row.split("</td>")[:-1]]
    assert [c.replace('<span class="status status-waiting">', "").replace("</span>", "")
            for c in cells[:6]] == ["dash_summer", "waiting", "reading", "3", "4", "1"]  # fmt: skip
    assert cells[6:8] == ["42", "42"]  # its result and its checkpoint
    signal_rows = page.split('<table class="signals">', 1)[1].split("</table>", 1)[0]
    refused = signal_rows.split('<tr data-seq="2">', 1)[1].split("</tr>", 1)[0]
    assert html.unescape('{"value":"many"}') in html.unescape(refused)
    assert "dash_summer (refused)" in refused
    delivered = signal_rows.split('<tr data-seq="3">', 1)[1].split("</tr>", 1)[0]
    assert '{"value":41}' in html.unescape(delivered)
    assert "<td>dash_summer</td>" in delivered

    # The driver's wait is pyworkflow's own hook: signed in, no form offers to deliver to it.
    assert (await dash.reader.post("/login", data={"token": TOKEN})).is_redirect
    page = (await dash.reader.get(f"/runs/{driver}")).text
    assert "pyworkflow.stream.signal" in page
    assert "emit a signal to the stream run to wake it" in page
    assert "Deliver payload" not in page

    parent_page = (await dash.reader.get(f"/runs/{parent}")).text
    assert f'<a href="/runs/{driver}#stream" class="stream-link">' in parent_page
    assert f'stream run <span class="mono">{STREAM_RUN}</span>' in parent_page
    assert "Stream run <span" not in parent_page  # the stream run itself is on its driver's page
    await emit("dash_sensors", "reading", {"value": 0}, stream_run_id=STREAM_RUN)
    await settled(parent, RunStatus.COMPLETED)
