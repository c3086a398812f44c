"""The runs page and API filtered by tag, and the live counts of one workflow, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from dash_support import Dashboard, settled

import pyworkflow
from pyworkflow import RunStatus


async def ok(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


async def ids(client: httpx.AsyncClient, query: str) -> set[str]:
    return {r["run_id"] for r in (await ok(await client.get(f"/api/runs?{query}")))["runs"]}


async def test_runs_filtered_by_tags(dash: Dashboard) -> None:
    tagged = [await pyworkflow.start("dash_tagged", i) for i in range(3)]
    plain = await pyworkflow.start("dash_greet", "x")
    for run_id in tagged:
        await settled(run_id, RunStatus.COMPLETED)
    await settled(plain, RunStatus.COMPLETED)

    assert await ids(dash.reader, "tag=billing") == set(tagged)
    assert await ids(dash.reader, "tag=billing&tag=eu") == set(tagged)
    assert await ids(dash.reader, "tag=billing&tag=us") == set()
    assert await ids(dash.reader, "tag=bill") == set()  # whole tags only
    assert await ids(dash.reader, "tag=") == set(tagged) | {plain}  # an empty field: no filter
    assert await ids(dash.reader, "tag=eu&status=failed") == set()
    listed = (await ok(await dash.reader.get("/api/runs?tag=eu")))["runs"]
    assert all(r["tags"] == ["billing", "eu"] for r in listed)
    paged = await ok(await dash.reader.get("/api/runs?tag=eu&limit=2"))
    rest = await ids(dash.reader, f"tag=eu&limit=2&before={paged['next_before']}")
    assert {r["run_id"] for r in paged["runs"]} | rest == set(tagged)
    refused = await ok(await dash.reader.get("/api/runs?tag=a,b"), 400)
    assert "tag='a,b'" in refused["message"]

    page = (await dash.reader.get("/runs?tag=billing&tag=eu")).text
    assert all(run_id in page for run_id in tagged)
    assert plain not in page
    # The chosen tags stay checked in the form, and each run's tags link to their filter.
    assert '<input type="checkbox" name="tag" value="billing" checked>' in page
    assert '<input type="checkbox" name="tag" value="eu" checked>' in page
    assert 'href="/runs?tag=billing" class="tag"' in page
    assert "tag=billing&amp;tag=eu" in page  # the "as JSON" link keeps them


async def test_counts_of_one_workflow_on_the_runs_page_and_per_workflow(
    dash: Dashboard, tmp_path: Path
) -> None:
    for i in range(2):
        await settled(await pyworkflow.start("dash_greet", str(i)), RunStatus.COMPLETED)
    await settled(await pyworkflow.start("dash_fragile", str(tmp_path / "x")), RunStatus.FAILED)

    page = (await dash.reader.get("/runs?workflow=dash_fragile")).text
    # The page's script polls the counts of the workflow filtered on, and says so.
    assert 'data-url="/api/runs/counts?workflow=dash_fragile"' in page
    assert "every run of dash_fragile" in page
    assert 'href="/runs?workflow=dash_fragile&amp;status=failed"' in page
    counted = await ok(await dash.reader.get("/api/runs/counts?workflow=dash_fragile"))
    assert (counted["counts"]["failed"], counted["total"]) == (1, 1)
    everything = (await dash.reader.get("/runs")).text
    assert 'data-url="/api/runs/counts"' in everything
    assert "(all workflows)" in everything

    per = (await ok(await dash.reader.get("/api/workflows/counts")))["workflows"]
    assert per["dash_greet"]["counts"]["completed"] == 2
    assert per["dash_greet"]["total"] == 2
    assert per["dash_fragile"]["counts"]["failed"] == 1
    assert per["dash_nap"]["total"] == 0  # registered here, never run
    workflows = (await dash.reader.get("/workflows")).text
    assert 'id="workflow-counts"' in workflows
    assert 'data-workflow="dash_greet"' in workflows
