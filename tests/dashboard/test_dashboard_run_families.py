"""A run's page on SQLite and PostgreSQL: its whole continue-as-new chain, its children a page
at a time, and the first and last of a long log (every event on request).
"""

from __future__ import annotations

import re

import httpx
from dash_support import Dashboard, settled

import pyworkflow
from pyworkflow import RunStatus
from pyworkflow.dashboard.pages import CHAIN_REACH, EVENTS_SHOWN, STEPS_SHOWN
from pyworkflow.inspect import CHILDREN_SHOWN


async def html(client: httpx.AsyncClient, path: str) -> str:
    answer = await client.get(path)
    assert answer.status_code == 200, answer.text
    return answer.text


def run_links(page: str, section: str) -> list[str]:
    """The run ids linked from one section of a run's page, in the order shown."""
    start = page.index(f'id="{section}"')
    end = page.find("<h2", start)
    part = page[start : end if end != -1 else len(page)]
    return re.findall(r'href="/runs/(run_[0-9a-f]+)"', part)


async def test_a_run_page_shows_the_whole_chain_from_any_of_its_runs(dash: Dashboard) -> None:
    first = await pyworkflow.start("dash_countdown", 4)
    chain = (await dash.reader.get(f"/api/runs/{first}/chain")).json()
    while chain["chain"][-1]["status"] != "completed":
        last = chain["chain"][-1]["run_id"]
        await settled(last, RunStatus.COMPLETED, RunStatus.CONTINUED_AS_NEW)
        chain = (await dash.reader.get(f"/api/runs/{first}/chain")).json()
    ids = [link["run_id"] for link in chain["chain"]]
    assert len(ids) == 5
    for i, run_id in enumerate(ids):
        page = await html(dash.reader, f"/runs/{run_id}")
        # Every other run of the chain is a link, in order; this run is named, not linked.
        assert run_links(page, "chain") == ids[:i] + ids[i + 1 :]
        assert f'<b class="mono">{run_id}</b> (this run)' in page
        assert "5 runs" in page
    lone = await pyworkflow.start("dash_greet", "solo")
    await settled(lone, RunStatus.COMPLETED)
    assert 'id="chain"' not in await html(dash.reader, f"/runs/{lone}")
    assert CHAIN_REACH >= 5


async def test_children_beyond_the_first_page_are_a_click_away(dash: Dashboard) -> None:
    parent = await pyworkflow.start("dash_fanout", CHILDREN_SHOWN + 5)
    await settled(parent, RunStatus.COMPLETED)
    every = (await dash.reader.get(f"/api/runs/{parent}/children?limit=500")).json()
    children = [c["run_id"] for c in every["children"]]  # newest first
    assert len(children) == CHILDREN_SHOWN + 5
    page = await html(dash.reader, f"/runs/{parent}")
    assert run_links(page, "children") == children[:CHILDREN_SHOWN]
    older = re.search(r'href="(/runs/[^"]+children_before=[^"]+)" id="older-children"', page)
    assert older is not None
    rest = await html(dash.reader, older.group(1).replace("&amp;", "&"))
    assert run_links(rest, "children") == children[CHILDREN_SHOWN:]
    assert 'id="older-children"' not in rest
    assert "newest children" in rest
    missing = await dash.reader.get(f"/runs/{parent}?children_before=run_nope")
    assert missing.status_code == 404


async def test_a_long_log_shows_its_first_and_last_events_and_every_one_on_request(
    dash: Dashboard,
) -> None:
    steps = STEPS_SHOWN + 10
    run_id = await pyworkflow.start("dash_steps", steps)
    await settled(run_id, RunStatus.COMPLETED, within=60)
    events = steps * 2 + 2  # started, a start and an end per step, completed
    page = await html(dash.reader, f"/runs/{run_id}")
    shown = [int(n) for n in re.findall(r'<tr><td>(\d+)</td><td class="mono">', page)]
    half = EVENTS_SHOWN // 2
    assert shown == [*range(1, half + 1), *range(events - half + 1, events + 1)]
    assert f"{events - EVENTS_SHOWN} more events between these" in page
    assert f"{steps - STEPS_SHOWN} more attempts between these" in page
    assert page.count('<td class="mono">shout#') == STEPS_SHOWN
    whole = await html(dash.reader, f"/runs/{run_id}?events=all&steps=all")
    shown = [int(n) for n in re.findall(r'<tr><td>(\d+)</td><td class="mono">', whole)]
    assert shown == list(range(1, events + 1))
    assert "more events between these" not in whole
    assert whole.count('<td class="mono">shout#') == steps
    # The API always carries every event.
    document = (await dash.reader.get(f"/api/runs/{run_id}")).json()
    assert (len(document["timeline"]), document["events"]) == (events, events)
