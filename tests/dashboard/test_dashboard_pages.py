"""The HTML pages through the ASGI app: escaping, large and undecodable values, the forms."""

from __future__ import annotations

import pathlib
import re
from pathlib import Path

import httpx
import pytest
from dash_support import TOKEN, Dashboard, settled

import pyworkflow
from pyworkflow import RunStatus
from pyworkflow.dashboard.display import VALUE_LIMIT

SCRIPT = "<script>alert(1)</script>"


class Trap:
    """Unpickling it creates a file: proof that a process unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (pathlib.Path.touch, (self.path,))

    def __str__(self) -> str:
        return "trap"


async def page(client: httpx.AsyncClient, path: str, code: int = 200) -> str:
    answer = await client.get(path)
    assert answer.status_code == code, answer.text
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    return answer.text


async def test_user_data_is_escaped_everywhere(dash: Dashboard) -> None:
    run_id = await pyworkflow.start("dash_greet", SCRIPT)
    await settled(run_id, RunStatus.COMPLETED)
    for path in (f"/runs/{run_id}", "/runs", "/workflows"):
        html = await page(dash.reader, path)
        assert SCRIPT not in html
        assert SCRIPT.upper() not in html
    html = await page(dash.reader, f"/runs/{run_id}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/live.js" defer>']


async def test_a_large_result_is_cut_with_a_link_to_the_whole(dash: Dashboard) -> None:
    run_id = await pyworkflow.start("dash_big", 5_000_000)
    await settled(run_id, RunStatus.COMPLETED)
    answer = await dash.reader.get(f"/runs/{run_id}")
    assert answer.status_code == 200
    assert len(answer.text) < 100_000
    assert f"showing {VALUE_LIMIT} of 5000002 characters" in answer.text
    assert f'href="/api/runs/{run_id}/values/result"' in answer.text
    whole = await dash.reader.get(f"/api/runs/{run_id}/values/result")
    assert whole.json() == "x" * 5_000_000


async def test_a_pickled_value_is_shown_as_such_and_never_unpickled(
    dash: Dashboard, tmp_path: Path
) -> None:
    trap = tmp_path / "unpickled"
    run_id = await pyworkflow.start("dash_greet", Trap(trap))
    await settled(run_id, RunStatus.COMPLETED)
    trap.unlink()  # the worker (this process) unpickled it to run the workflow
    html = await page(dash.reader, f"/runs/{run_id}")
    assert "cannot decode here" in html
    assert "pickle" in html
    stored = (await dash.reader.get(f"/api/runs/{run_id}")).json()["args"]
    assert "pickle" in str(stored)
    await dash.reader.get(f"/api/runs/{run_id}/values/args")
    assert not trap.exists()


async def test_forms_need_the_login_and_carry_csrf(dash: Dashboard, tmp_path: Path) -> None:
    run_id = await pyworkflow.start("dash_nap", 3600)
    await settled(run_id, RunStatus.SUSPENDED)
    html = await page(dash.reader, f"/runs/{run_id}")
    assert 'id="cancel"' not in html
    assert "Sign in" in html
    wrong = await dash.reader.post("/login", data={"token": "nope"})
    assert wrong.status_code == 403
    signed = await dash.reader.post("/login", data={"token": TOKEN})
    assert signed.status_code == 303
    assert "httponly" in signed.headers["set-cookie"].lower()
    assert "samesite=strict" in signed.headers["set-cookie"].lower()
    html = await page(dash.reader, f"/runs/{run_id}")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert csrf is not None
    refused = await dash.reader.post(f"/runs/{run_id}/cancel", data={})
    assert refused.status_code == 403
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.SUSPENDED
    done = await dash.reader.post(f"/runs/{run_id}/cancel", data={"csrf": csrf.group(1)})
    assert done.status_code == 303
    assert done.headers["location"] == f"/runs/{run_id}?notice=cancelled"
    await settled(run_id, RunStatus.CANCELLED)


async def test_a_bad_payload_is_refused_on_the_page(dash: Dashboard) -> None:
    run_id = await pyworkflow.start("dash_approval", "x")
    await settled(run_id, RunStatus.SUSPENDED)
    await dash.reader.post("/login", data={"token": TOKEN})
    html = await page(dash.reader, f"/runs/{run_id}")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert csrf is not None
    answer = await dash.reader.post(
        f"/runs/{run_id}/deliver",
        data={"csrf": csrf.group(1), "hook_id": "hook:approval#1", "payload": "{not json"},
    )
    assert answer.status_code == 400
    assert "the payload is not JSON" in answer.text
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.SUSPENDED


async def test_the_schedules_entry_is_shown_and_its_page_answers(dash: Dashboard) -> None:
    # Every storage keeps schedules (SQLite, PostgreSQL, memory): the entry is always there.
    assert 'href="/schedules"' in await page(dash.reader, "/runs")
    assert (await dash.reader.get("/api/meta")).json() == {"writable": True}
    assert "No schedules here" in await page(dash.reader, "/schedules")


@pytest.mark.parametrize("path", ["/runs?status=nope", "/runs/run_missing"])
async def test_bad_requests_show_an_error_page(dash: Dashboard, path: str) -> None:
    html = await page(dash.reader, path, 400 if "status" in path else 404)
    assert "Back to the runs" in html
