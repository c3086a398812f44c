"""Schedules through the JSON API and the page, on SQLite and PostgreSQL: listing, the runs a
schedule started, pause / resume / trigger / backfill / delete with the write token, refusals
that change nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from dash_support import TOKEN, Dashboard

from pyworkflow import RunStatus, get_workflow_run
from pyworkflow.schedules import ScheduleSpec, create_schedule, get_schedule

# 03:17 Prague time each day: never reached while a test runs here, so no slot fires by itself.
NIGHTLY = ScheduleSpec(cron="17 3 * * *", timezone="Europe/Prague")
# Noon UTC each day: a backfill of a past range starts one run per day in it.
DAILY_NOON = ScheduleSpec(cron="0 12 * * *")


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


async def test_backfill_a_range_and_delete_a_schedule(dash: Dashboard) -> None:
    await create_schedule("dash_greet", DAILY_NOON, args=["past"], schedule_id="noon")
    now = datetime.now(UTC)
    start = (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S")
    end = (now - timedelta(days=1)).isoformat()
    body = {"start": start, "end": end}
    filled = await ok(await dash.writer.post("/api/schedules/noon/backfill", json=body), 201)
    assert filled["schedule_id"] == "noon"
    assert len(filled["run_ids"]) == 2  # the noons of the two days between
    slots = [(await get_workflow_run(run_id)).schedule_slot_at for run_id in filled["run_ids"]]
    assert all(s is not None and (s.hour, s.minute) == (12, 0) for s in slots), slots
    # Again over a wider range: the slots that had their runs keep them.
    again = await ok(
        await dash.writer.post("/api/schedules/noon/backfill", json={"start": "4d", "end": end}),
        201,
    )
    assert again["run_ids"][-2:] == filled["run_ids"]
    assert len(again["run_ids"]) == 3
    listed = await ok(await dash.reader.get("/api/runs?schedule=noon"))
    assert {r["run_id"] for r in listed["runs"]} == set(again["run_ids"])
    for bad in ({}, {"start": "soonish"}, {"start": end, "end": start}):
        await ok(await dash.writer.post("/api/schedules/noon/backfill", json=bad), 400)
    await ok(await dash.writer.post("/api/schedules/nope/backfill", json=body), 404)

    deleted = await ok(await dash.writer.delete("/api/schedules/noon"))
    assert (deleted["status"], deleted["next_run_at"]) == ("deleted", None)
    assert (await ok(await dash.reader.get("/api/schedules/noon")))["status"] == "deleted"
    await ok(await dash.writer.delete("/api/schedules/noon"), 404)  # gone already
    await ok(await dash.writer.post("/api/schedules/noon/backfill", json=body), 404)
    assert (await ok(await dash.reader.get("/api/schedules")))["schedules"] == []
    # Its runs go on and stay listed.
    listed = await ok(await dash.reader.get("/api/runs?schedule=noon"))
    assert len(listed["runs"]) == 3


async def test_backfill_and_delete_without_the_token_are_refused_and_change_nothing(
    dash: Dashboard,
) -> None:
    await create_schedule("dash_greet", DAILY_NOON, args=["x"], schedule_id="noon")
    before = await ok(await dash.reader.get("/api/schedules/noon"))
    body = {"start": "3d"}
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        await ok(
            await dash.reader.post("/api/schedules/noon/backfill", json=body, headers=headers), 403
        )
        await ok(await dash.reader.delete("/api/schedules/noon", headers=headers), 403)
    assert (await dash.reader.post("/login", data={"token": TOKEN})).is_redirect
    await ok(await dash.reader.delete("/api/schedules/noon"), 403)  # a cookie needs the CSRF value
    for action, data in (("backfill", {"start": "2024-01-01T00:00"}), ("delete", {})):
        forged = await dash.reader.post(f"/schedules/noon/{action}", data={**data, "csrf": "x"})
        assert forged.status_code == 403
    assert await ok(await dash.reader.get("/api/schedules/noon")) == before
    assert (await ok(await dash.reader.get("/api/runs")))["runs"] == []


async def test_the_pages_backfill_and_delete_with_a_confirmation(dash: Dashboard) -> None:
    await create_schedule("dash_greet", DAILY_NOON, args=["x"], schedule_id="noon")
    assert (await dash.reader.post("/login", data={"token": TOKEN})).is_redirect
    listing = (await dash.reader.get("/schedules")).text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', listing)
    assert csrf is not None
    assert 'action="/schedules/noon/backfill"' in listing
    assert 'href="/schedules/noon/delete"' in listing

    start = (datetime.now(UTC) - timedelta(days=2, hours=1)).strftime("%Y-%m-%dT%H:%M")
    filled = await dash.reader.post(
        "/schedules/noon/backfill", data={"csrf": csrf.group(1), "start": start, "end": ""}
    )
    assert filled.status_code == 303
    assert filled.headers["location"] == "/runs?schedule=noon&notice=schedule-backfilled"
    runs = (await ok(await dash.reader.get("/api/runs?schedule=noon")))["runs"]
    assert len(runs) in (2, 3)  # the noons since then: two, or three once past today's
    bad = await dash.reader.post(
        "/schedules/noon/backfill", data={"csrf": csrf.group(1), "start": "whenever"}
    )
    assert bad.status_code == 400
    assert "start=&#39;whenever&#39; is neither a duration" in bad.text

    # Deleting asks first; the question names the schedule and its form carries the CSRF value.
    asked = (await dash.reader.get("/schedules/noon/delete")).text
    assert "Delete schedule" in asked
    assert 'action="/schedules/noon/delete"' in asked
    assert f'value="{csrf.group(1)}"' in asked
    assert (await get_schedule("noon")).status.value == "active"
    done = await dash.reader.post("/schedules/noon/delete", data={"csrf": csrf.group(1)})
    assert done.status_code == 303
    assert done.headers["location"] == "/schedules?notice=schedule-deleted"
    assert (await ok(await dash.reader.get("/api/schedules/noon")))["status"] == "deleted"
    assert "deleted already" in (await dash.reader.get("/schedules/noon/delete")).text
    assert (await dash.reader.get("/schedules/nope/delete")).status_code == 404
    assert 'data-schedule="noon"' not in (await dash.reader.get("/schedules")).text
