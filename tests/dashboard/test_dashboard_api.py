"""The JSON API against SQLite and PostgreSQL: listings, filters, paging, runs, writes, refusals."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from dash_support import TOKEN, Dashboard, settled
from openapi_spec_validator import validate

import pyworkflow
from pyworkflow import RunStatus
from pyworkflow.dashboard import create_app


async def ok(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


async def test_runs_page_through_every_run_once_and_filter(dash: Dashboard, tmp_path: Path) -> None:
    greeted = [await pyworkflow.start("dash_greet", f"n{i}") for i in range(7)]
    broken = [await pyworkflow.start("dash_fragile", str(tmp_path / "nope")) for _ in range(2)]
    for run_id in greeted:
        await settled(run_id, RunStatus.COMPLETED)
    for run_id in broken:
        await settled(run_id, RunStatus.FAILED)

    seen: list[str] = []
    before = None
    while True:
        query = "limit=3" + (f"&before={before}" if before else "")
        page = await ok(await dash.reader.get(f"/api/runs?{query}"))
        assert len(page["runs"]) <= 3
        seen += [r["run_id"] for r in page["runs"]]
        before = page["next_before"]
        if before is None:
            break
    assert sorted(seen) == sorted(greeted + broken)
    assert len(seen) == len(set(seen))
    newest_first = [r["created_at"] for r in (await ok(await dash.reader.get("/api/runs")))["runs"]]
    assert newest_first == sorted(newest_first, reverse=True)

    failed = await ok(await dash.reader.get("/api/runs?status=failed"))
    assert sorted(r["run_id"] for r in failed["runs"]) == sorted(broken)
    both = await ok(await dash.reader.get("/api/runs?status=failed&status=completed&limit=500"))
    assert len(both["runs"]) == 9
    by_name = await ok(await dash.reader.get("/api/runs?workflow=dash_greet"))
    assert sorted(r["run_id"] for r in by_name["runs"]) == sorted(greeted)
    one = greeted[3]
    prefixed = await ok(await dash.reader.get(f"/api/runs?run_id={one[:-2]}"))
    assert one in [r["run_id"] for r in prefixed["runs"]]
    assert all(r["run_id"].startswith(one[:-2]) for r in prefixed["runs"])
    assert len((await ok(await dash.reader.get("/api/runs?since=1h")))["runs"]) == 9
    assert (await ok(await dash.reader.get("/api/runs?until=1h")))["runs"] == []
    future = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 3600))
    assert len((await ok(await dash.reader.get(f"/api/runs?until={future}")))["runs"]) == 9

    counts = await ok(await dash.reader.get("/api/runs/counts"))
    assert counts["counts"]["completed"] == 7
    assert counts["counts"]["failed"] == 2
    assert counts["total"] == 9
    of_one = await ok(await dash.reader.get("/api/runs/counts?workflow=dash_fragile"))
    assert of_one["total"] == 2


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("status=finished", "status='finished'"),
        ("limit=0", "limit='0'"),
        ("limit=abc", "limit='abc'"),
        ("since=yesterday-ish", "since='yesterday-ish'"),
    ],
)
async def test_bad_filters_answer_400_naming_the_parameter(
    dash: Dashboard, query: str, named: str
) -> None:
    answer = await ok(await dash.reader.get(f"/api/runs?{query}"), 400)
    assert answer["error"] == "InputError"
    assert named in answer["message"]


async def test_unknown_run_and_cursor_answer_404(dash: Dashboard) -> None:
    answer = await ok(await dash.reader.get("/api/runs/run_nope"), 404)
    assert answer["error"] == "RunNotFoundError"
    await ok(await dash.reader.get("/api/runs?before=run_nope"), 404)


async def test_a_run_has_its_values_timeline_spans_and_history(dash: Dashboard) -> None:
    run_id = await pyworkflow.start("dash_greet", "ana")
    await settled(run_id, RunStatus.COMPLETED)
    run = await ok(await dash.reader.get(f"/api/runs/{run_id}"))
    assert run["status"] == "completed"
    assert run["args"] == {"args": ["ana"], "kwargs": {}}
    assert run["result"] == {"greeting": "HELLO ANA"}
    assert [(s["kind"], s["outcome"]) for s in run["spans"]] == [("step", "completed")]
    assert run["marks"][-1]["label"] == "completed"
    history = await ok(await dash.reader.get(f"/api/runs/{run_id}/history"))
    assert history["events"][0]["type"] == "workflow_started"
    value = await ok(await dash.reader.get(f"/api/runs/{run_id}/values/result"))
    assert value == {"greeting": "HELLO ANA"}
    await ok(await dash.reader.get(f"/api/runs/{run_id}/values/secrets"), 400)
    chain = await ok(await dash.reader.get(f"/api/runs/{run_id}/chain"))
    assert [link["run_id"] for link in chain["chain"]] == [run_id]


async def test_workflows_have_counts_success_rate_and_percentiles(
    dash: Dashboard, tmp_path: Path
) -> None:
    for i in range(3):
        await settled(await pyworkflow.start("dash_greet", str(i)), RunStatus.COMPLETED)
    await settled(await pyworkflow.start("dash_fragile", str(tmp_path / "x")), RunStatus.FAILED)
    found = {
        w["workflow"]: w for w in (await ok(await dash.reader.get("/api/workflows")))["workflows"]
    }
    greet = found["dash_greet"]
    assert greet["total"] == 3
    assert greet["last_hour"]["completed"] == 3
    assert greet["success_rate"] == 1.0
    assert greet["sampled"] == 3
    assert 0 < greet["p50"] <= greet["p95"] <= greet["p99"]
    assert found["dash_fragile"]["success_rate"] == 0.0
    # Registered here (dash_flows) but never run: listed with nothing.
    assert found["dash_nap"]["total"] == 0
    assert found["dash_nap"]["registered"] is True


async def test_writes_without_the_token_are_refused_and_change_nothing(dash: Dashboard) -> None:
    run_id = await pyworkflow.start("dash_nap", 3600)
    await settled(run_id, RunStatus.SUSPENDED)
    read_only = create_app(write_token=None)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=read_only), base_url="http://ro.test"
    ) as client:
        answer = await ok(
            await client.post(
                f"/api/runs/{run_id}/cancel", headers={"Authorization": f"Bearer {TOKEN}"}
            ),
            403,
        )
        assert "read-only" in answer["message"]
    for attempt in (
        dash.reader.post(f"/api/runs/{run_id}/cancel"),
        dash.reader.post(f"/api/runs/{run_id}/cancel", headers={"Authorization": "Bearer wrong"}),
        dash.reader.post(f"/api/runs/{run_id}/rerun"),
        dash.reader.post(
            f"/api/runs/{run_id}/hooks/deliver", json={"hook_id": "hook:x#1", "payload": 1}
        ),
    ):
        await ok(await attempt, 403)
    # The login cookie alone is not enough: a cross-site form would carry it too.
    login = await dash.reader.post("/login", data={"token": TOKEN})
    assert login.status_code == 303
    await ok(await dash.reader.post(f"/api/runs/{run_id}/cancel"), 403)
    form = await dash.reader.post(f"/runs/{run_id}/cancel", data={"csrf": "forged"})
    assert form.status_code == 403
    run = await pyworkflow.get_workflow_run(run_id)
    assert run.status is RunStatus.SUSPENDED
    assert (await ok(await dash.reader.get(f"/api/runs/{run_id}")))["cancel_requested"] is False
    assert len((await ok(await dash.reader.get("/api/runs")))["runs"]) == 1  # no re-run started


async def test_cancel_a_sleeping_run(dash: Dashboard) -> None:
    run_id = await pyworkflow.start("dash_nap", 3600)
    await settled(run_id, RunStatus.SUSPENDED)
    answer = await ok(
        await dash.writer.post(f"/api/runs/{run_id}/cancel", json={"reason": "enough"})
    )
    assert answer["cancel_requested"] is True
    assert await settled(run_id, RunStatus.CANCELLED) is RunStatus.CANCELLED
    again = await ok(await dash.writer.post(f"/api/runs/{run_id}/cancel"))
    assert again == {"run_id": run_id, "cancel_requested": False, "status": "cancelled"}


async def test_resume_a_failed_run_and_it_completes(dash: Dashboard, tmp_path: Path) -> None:
    marker = tmp_path / "fixed"
    run_id = await pyworkflow.start("dash_fragile", str(marker))
    await settled(run_id, RunStatus.FAILED)
    failed = await ok(await dash.reader.get(f"/api/runs/{run_id}"))
    assert failed["error"]["type"] == "RuntimeError"
    marker.touch()
    answer = await ok(await dash.writer.post(f"/api/runs/{run_id}/resume"))
    assert answer == {"run_id": run_id, "resumed": True, "status": "pending"}
    await settled(run_id, RunStatus.COMPLETED)
    assert await pyworkflow.get_workflow_result(run_id) == "fixed"
    conflict = await ok(await dash.writer.post(f"/api/runs/{run_id}/resume"), 409)
    assert conflict["error"] == "InvalidRunStateError"


async def test_deliver_a_hook_payload_and_the_run_completes(dash: Dashboard) -> None:
    run_id = await pyworkflow.start("dash_approval", "laptop")
    await settled(run_id, RunStatus.SUSPENDED)
    run = await ok(await dash.reader.get(f"/api/runs/{run_id}"))
    (hook,) = run["waiting_hooks"]
    assert "token" not in hook
    missing = await dash.writer.post(
        f"/api/runs/{run_id}/hooks/deliver", json={"hook_id": "hook:no#1"}
    )
    assert missing.status_code == 404
    body = {"hook_id": hook["hook_id"], "payload": {"approved": True, "by": "ana"}}
    delivered = await ok(await dash.writer.post(f"/api/runs/{run_id}/hooks/deliver", json=body))
    assert delivered["status"] == "received"
    await settled(run_id, RunStatus.COMPLETED)
    assert await pyworkflow.get_workflow_result(run_id) == {
        "request": "laptop",
        "decision": {"approved": True, "by": "ana"},
    }
    twice = await ok(await dash.writer.post(f"/api/runs/{run_id}/hooks/deliver", json=body), 404)
    assert twice["error"] == "HookNotFoundError"  # its run has ended


async def test_rerun_starts_the_same_workflow_with_the_same_arguments(dash: Dashboard) -> None:
    first = await pyworkflow.start("dash_greet", "bo")
    await settled(first, RunStatus.COMPLETED)
    answer = await ok(await dash.writer.post(f"/api/runs/{first}/rerun"), 201)
    assert answer["run_id"] != first
    await settled(answer["run_id"], RunStatus.COMPLETED)
    assert await pyworkflow.get_workflow_result(answer["run_id"]) == {"greeting": "HELLO BO"}


def schemas_of(document: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"]
    return found


async def test_openapi_describes_every_api_route(dash: Dashboard) -> None:
    document = await ok(await dash.reader.get("/api/openapi.json"))
    assert document["openapi"].startswith("3.1")
    app = create_app()
    routes = {
        (r.path, method.lower())
        for r in app.routes
        if getattr(r, "path", "").startswith("/api/")
        for method in getattr(r, "methods", ()) - {"HEAD"}
    }
    described = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert routes == described
    assert ("/api/schedules/{schedule_id}", "delete") in described
    assert ("/api/schedules/{schedule_id}/backfill", "post") in described
    assert "schedules" not in schemas_of(document)["Meta"]["properties"]
    schemas = document["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    validate(document)  # raises on a document that is not valid OpenAPI 3.1
