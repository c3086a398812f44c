"""Schedules through the JSON API and the page, on SQLite and PostgreSQL: listing, the runs a
schedule started, pause / resume / trigger with the write token, refusals that change nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from dash_support import TOKEN, Dashboard

from pyworkflow import RunStatus, get_workflow_run
from pyworkflow.schedules import ScheduleSpec, create_schedule, get_schedule

# 03:17 Prague time each day: never reached while a test runs here, so no slot fires by itself.
NIGHTLY = ScheduleSpec(cron="17 3 * * *", timezone="Europe/Prague")


async def ok(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


async def test_list_pause_resume_and_trigger_schedules(dash: Dashboard, tmp_path: Path) -> None:
    await create_schedule("dash_greet", NIGHTLY, args=["night"], schedule_id="nightly")
    await create_schedule(
        "dash_fragile", ScheduleSpec(cron="17 3 * * *"), args=[str(tmp_path / "no")],
        schedule_id="fragile<b>", paused=True,
    )  # fmt: skip

    listed = (await ok(await dash.reader.get("/api/schedules")))["schedules"]
    assert [s["schedule_id"] for s in listed] == ["fragile<b>", "nightly"]
    nightly = listed[1]
    assert nightly["workflow"] == "dash_greet"
    assert nightly["status"] == "active"
    assert "17 3 * * *" in nightly["describes"]
    assert "Europe/Prague" in nightly["describes"]
    assert nightly["next_run_at"] is not None
    assert nightly["total_runs"] == 0
    assert nightly["last_run_id"] is None
    assert listed[0]["status"] == "paused"
    assert listed[0]["next_run_at"] is None
    paused_only = await ok(await dash.reader.get("/api/schedules?status=paused"))
    assert [s["schedule_id"] for s in paused_only["schedules"]] == ["fragile<b>"]
    await ok(await dash.reader.get("/api/schedules?status=sleepy"), 400)
    missing = await ok(await dash.reader.get("/api/schedules/nope"), 404)
    assert missing["error"] == "ScheduleNotFoundError"

    paused = await ok(await dash.writer.post("/api/schedules/nightly/pause"))
    assert (paused["status"], paused["next_run_at"]) == ("paused", None)
    assert (await get_schedule("nightly")).status.value == "paused"
    resumed = await ok(await dash.writer.post("/api/schedules/nightly/resume"))
    assert resumed["status"] == "active"
    assert resumed["next_run_at"] == nightly["next_run_at"]

    # A triggered run is stored for a worker to run (this process executes only what it
    # starts itself): it stays pending here; the browser test sees a worker run one.
    started = await ok(await dash.writer.post("/api/schedules/nightly/trigger"), 201)
    broken = await ok(await dash.writer.post("/api/schedules/fragile%3Cb%3E/trigger"), 201)
    await ok(await dash.writer.post("/api/schedules/nope/trigger"), 404)
    assert (await get_workflow_run(started["run_id"])).status is RunStatus.PENDING

    one = await ok(await dash.reader.get("/api/schedules/nightly"))
    assert (one["total_runs"], one["last_run_id"]) == (1, started["run_id"])
    assert one["runs_by_status"] == {"pending": 1}
    assert one["next_run_at"] == nightly["next_run_at"]  # its slots are unchanged
    runs = await ok(await dash.reader.get("/api/runs?schedule=nightly"))
    assert [r["run_id"] for r in runs["runs"]] == [started["run_id"]]
    assert runs["runs"][0]["schedule_id"] == "nightly"
    assert (await ok(await dash.reader.get("/api/runs?schedule=other")))["runs"] == []

    html = (await dash.reader.get("/schedules")).text
    assert 'href="/schedules" class="here"' in html
    assert "fragile&lt;b&gt;" in html
    assert "fragile<b>" not in html
    assert f'href="/runs/{started["run_id"]}"' in html
    assert 'href="/runs?schedule=fragile%3Cb%3E"' in html
    by_schedule = (await dash.reader.get("/runs?schedule=nightly")).text
    assert started["run_id"] in by_schedule
    assert broken["run_id"] not in by_schedule


async def test_schedule_writes_without_the_token_are_refused_and_change_nothing(
    dash: Dashboard,
) -> None:
    await create_schedule("dash_greet", NIGHTLY, args=["x"], schedule_id="nightly")
    before = await ok(await dash.reader.get("/api/schedules/nightly"))
    for action in ("pause", "resume", "trigger"):
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            answer = await ok(
                await dash.reader.post(f"/api/schedules/nightly/{action}", headers=headers), 403
            )
            assert answer["error"] == "Forbidden"
    # A signed-in browser's form still needs the CSRF value.
    assert (await dash.reader.post("/login", data={"token": TOKEN})).is_redirect
    forged = await dash.reader.post("/schedules/nightly/pause", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert await ok(await dash.reader.get("/api/schedules/nightly")) == before
    assert (await ok(await dash.reader.get("/api/runs")))["runs"] == []
