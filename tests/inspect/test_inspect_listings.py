"""Run listings: filters, keyset paging, time ranges, counting, on memory and SQLite."""

from __future__ import annotations

import pytest
from crafted_runs import T0, craft, new_run

from pyworkflow.events import RunStatus
from pyworkflow.exceptions import InputError, RunNotFoundError
from pyworkflow.inspect import RunFilter, count_ended_runs, iter_runs, list_runs
from pyworkflow.storage import Storage

# run id -> (workflow, status it ends in or None); run_0 is the oldest, 10 s apart.
RUNS = {
    "run_0": ("checkout", RunStatus.COMPLETED),
    "run_1": ("checkout", RunStatus.FAILED),
    "run_2": ("report", RunStatus.COMPLETED),
    "run_3": ("checkout", RunStatus.SUSPENDED),
    "run_4": ("report", RunStatus.FAILED),
    "run_5": ("checkout", None),
    "run_6": ("checkout", RunStatus.COMPLETED),
}
NEWEST_FIRST = sorted(RUNS, reverse=True)


@pytest.fixture
async def seeded(storage: Storage) -> Storage:
    for n, (run_id, (workflow, status)) in enumerate(RUNS.items()):
        await craft(storage, new_run(run_id, workflow=workflow, created=T0 + 10 * n), status=status)
    return storage


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two rows a query, so that every scan walks several pages."""
    monkeypatch.setattr("pyworkflow.inspect.runs._SCAN_BATCH", 2)


async def pages(storage: Storage, runs: RunFilter | None, limit: int) -> list[list[str]]:
    found: list[list[str]] = []
    before = None
    while True:
        page = await list_runs(storage, runs, limit=limit, before=before)
        found.append([r.run_id for r in page.runs])
        if page.next_before is None:
            return found
        assert page.next_before == page.runs[-1].run_id
        before = page.next_before


async def test_pages_walk_every_run_once_newest_first(seeded: Storage) -> None:
    assert await pages(seeded, None, 3) == [NEWEST_FIRST[:3], NEWEST_FIRST[3:6], NEWEST_FIRST[6:]]
    # A page that ends exactly on the last run says so: no empty page after it.
    assert await pages(seeded, None, 7) == [NEWEST_FIRST]


@pytest.mark.usefixtures("small_pages")
@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        (RunFilter(statuses=(RunStatus.FAILED,)), ["run_4", "run_1"]),
        (RunFilter(statuses=(RunStatus.COMPLETED, RunStatus.SUSPENDED), workflow="checkout"),
         ["run_6", "run_3", "run_0"]),
        (RunFilter(workflow="report"), ["run_4", "run_2"]),
        (RunFilter(since=T0 + 20), ["run_6", "run_5", "run_4", "run_3", "run_2"]),
        (RunFilter(until=T0 + 20), ["run_1", "run_0"]),
        (RunFilter(since=T0 + 10, until=T0 + 50, workflow="checkout"), ["run_3", "run_1"]),
        (RunFilter(since=T0 + 1000), []),
    ],
)  # fmt: skip
async def test_filters(seeded: Storage, runs: RunFilter, expected: list[str]) -> None:
    assert [r for page in await pages(seeded, runs, 2) for r in page] == expected
    assert [r.run_id async for r in iter_runs(seeded, runs)] == expected
    assert [r.run_id async for r in iter_runs(seeded, runs, limit=1)] == expected[:1]


@pytest.mark.usefixtures("small_pages")
async def test_iter_runs_reads_a_page_at_a_time_up_to_its_limit(seeded: Storage) -> None:
    assert [r.run_id async for r in iter_runs(seeded)] == NEWEST_FIRST
    assert [r.run_id async for r in iter_runs(seeded, limit=5)] == NEWEST_FIRST[:5]


async def test_a_page_and_its_json(seeded: Storage) -> None:
    page = await list_runs(seeded, RunFilter(workflow="report"), limit=1)
    document = page.to_json()
    assert document["next_before"] == "run_4"
    (run,) = document["runs"]
    assert (run["run_id"], run["workflow"], run["status"]) == ("run_4", "report", "failed")
    assert run["created_at"] == "2024-05-01T12:00:40+00:00"
    assert run["wake_at"] is None


async def test_counting_the_runs_that_ended_before_a_time(seeded: Storage) -> None:
    # Each crafted run ends a second after it starts; run_3 waits, run_5 never ended.
    assert await count_ended_runs(seeded, ended_before=T0 + 1000) == 5
    assert await count_ended_runs(seeded, ended_before=T0 + 21) == 2
    assert await count_ended_runs(seeded, ended_before=T0 + 21.5) == 3
    assert await count_ended_runs(seeded, ended_before=T0) == 0


async def test_bad_paging_input_is_refused(seeded: Storage) -> None:
    with pytest.raises(RunNotFoundError) as raised:
        await list_runs(seeded, before="run_nope")
    assert raised.value.run_id == "run_nope"
    with pytest.raises(InputError, match="limit must be at least 1, not 0"):
        await list_runs(seeded, limit=0)
    with pytest.raises(InputError, match="limit must be at least 1"):
        _ = [r async for r in iter_runs(seeded, limit=0)]
