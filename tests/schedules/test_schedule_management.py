"""Managing schedules mid-stream on the virtual clock: pause, resume, update, delete, trigger,
backfill, bounds, jitter and calendars; and bad definitions refused with nothing written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pyworkflow import (
    CalendarSpec,
    InputError,
    InvalidScheduleError,
    OverlapPolicy,
    ScheduleExistsError,
    ScheduleNotFoundError,
    ScheduleSpec,
    ScheduleStatus,
    WorkflowNotFoundError,
    backfill_schedule,
    create_schedule,
    delete_schedule,
    get_schedule,
    list_schedules,
    list_workflow_runs,
    pause_schedule,
    resume_schedule,
    trigger_schedule,
    update_schedule,
    workflow,
)
from pyworkflow.storage import MemoryStorage
from pyworkflow.testing import WorkflowEnvironment

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


@workflow(name="ts_tick")
async def tick(n: int = 0) -> int:
    return n


async def slots_started(schedule_id: str) -> list[float]:
    runs = await list_workflow_runs(schedule_id=schedule_id, limit=1000)
    return sorted((r.schedule_slot_at - START).total_seconds() for r in runs if r.schedule_slot_at)


async def test_pause_resume_update_and_delete_mid_stream() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        await create_schedule(tick, ScheduleSpec(interval="1h"), schedule_id="hourly")
        await env.advance("2h30m")
        assert await slots_started("hourly") == [0, 3600, 7200]
        paused = await pause_schedule("hourly")
        assert (paused.status, paused.next_run_time) == (ScheduleStatus.PAUSED, None)
        await env.advance("3h")  # 3h, 4h, 5h pass while paused: not made up
        assert await slots_started("hourly") == [0, 3600, 7200]
        resumed = await resume_schedule("hourly")
        assert resumed.next_run_time == START + timedelta(hours=6)
        await env.advance("1h")
        assert await slots_started("hourly") == [0, 3600, 7200, 21600]
        updated = await update_schedule("hourly", spec=ScheduleSpec(cron="15 * * * *"))
        assert updated.next_run_time == START + timedelta(hours=7, minutes=15)  # now is 6:30
        await env.advance("1h")
        assert (await slots_started("hourly"))[-1] == 7 * 3600 + 900
        await delete_schedule("hourly")
        with pytest.raises(ScheduleNotFoundError, match="hourly"):
            await get_schedule("hourly")
        before = len(await slots_started("hourly"))
        await env.advance("5h")
        assert len(await slots_started("hourly")) == before  # deleted: starts nothing more
        assert await list_schedules() == []
        assert [s.schedule_id for s in await list_schedules(status="deleted")] == ["hourly"]


async def test_trigger_starts_a_run_now_and_keeps_the_slots() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        await create_schedule(tick, ScheduleSpec(cron="0 9 * * *"), args=[7], schedule_id="d")
        await env.advance("1h")
        run_id = await trigger_schedule("d")
        assert await env.result(run_id) == 7
        run = await env.get_run(run_id)
        assert (run.schedule_id, run.schedule_slot_at) == ("d", START + timedelta(hours=1))
        schedule = await get_schedule("d")
        assert (schedule.total_runs, schedule.successful_runs) == (1, 1)
        assert schedule.next_run_time == START + timedelta(hours=9)


async def test_backfill_starts_each_slot_of_the_range_once() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        await create_schedule(tick, ScheduleSpec(cron="0 */6 * * *"), schedule_id="q")
        first = await backfill_schedule("q", START - timedelta(days=1), START - timedelta(hours=6))
        assert len(first) == 4  # 00:00, 06:00, 12:00, 18:00 of the day before
        again = await backfill_schedule("q", START - timedelta(days=1), START)
        assert again[:4] == first  # the slots that had runs keep them
        assert len(set(again)) == 5  # ... and 00:00 of the start day is new
        await env.advance(0)
        assert (await get_schedule("q")).total_runs == 5
        # The slot at START fired already from the backfill: the scheduler finds its run.
        await env.advance("1m")
        assert len(await list_workflow_runs(schedule_id="q")) == 5
        with pytest.raises(Exception, match="aware datetime"):
            await backfill_schedule("q", datetime(2026, 1, 1), START)


async def test_bounds_jitter_and_calendar() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        await create_schedule(
            tick,
            ScheduleSpec(
                interval="1h",
                start_at=START + timedelta(hours=2),
                end_at=START + timedelta(hours=4),
                jitter="10m",
            ),
            schedule_id="bounded",
        )
        await create_schedule(
            tick,
            ScheduleSpec(
                calendar=[CalendarSpec(day_of_month=1), CalendarSpec(day_of_month=15, hour=12)]
            ),
            schedule_id="cal",
        )
        await env.advance("40d")
        assert await slots_started("bounded") == [7200, 10800, 14400]
        runs = await list_workflow_runs(schedule_id="bounded")
        delays = [(r.created_at - r.schedule_slot_at).total_seconds() for r in runs]
        assert all(0 <= d < 600 for d in delays)  # jitter: within ten minutes of the slot
        assert (await get_schedule("bounded")).next_run_time is None  # past end_at
        cal = [START + timedelta(seconds=s) for s in await slots_started("cal")]
        assert cal == [
            datetime(2026, 3, 15, 12, tzinfo=UTC),
            datetime(2026, 4, 1, tzinfo=UTC),
        ]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"cron": "0 25 * * *"}, "cron"),
        ({"cron": "every day"}, "cron"),
        ({"interval": "5 parsecs"}, "interval"),
        ({"interval": "0s"}, "interval"),
        ({"cron": "* * * * *", "timezone": "Europe/Atlantis"}, "timezone"),
        ({"cron": "* * * * *", "interval": "1m"}, "spec"),
        ({"calendar": [CalendarSpec]}, "calendar"),
        ({"cron": "* * * * *", "start_at": datetime(2026, 1, 1)}, "start_at"),
    ],
)
def test_a_bad_spec_is_refused_naming_what(spec: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        ScheduleSpec(**spec)  # type: ignore[arg-type]
    assert caught.value.field == field


async def test_bad_definitions_write_nothing() -> None:
    async with WorkflowEnvironment(start_time=START):
        with pytest.raises(InvalidScheduleError, match="overlap_policy"):
            await create_schedule(tick, ScheduleSpec(interval="1m"), overlap_policy="sometimes")
        with pytest.raises(InvalidScheduleError, match="catchup_window"):
            await create_schedule(tick, ScheduleSpec(interval="1m"), catchup_window="-1s")
        with pytest.raises(WorkflowNotFoundError):
            await create_schedule("no_such_workflow", ScheduleSpec(interval="1m"))
        with pytest.raises(Exception, match="arguments"):
            await create_schedule(tick, ScheduleSpec(interval="1m"), args=[1, 2, 3])
        assert await list_schedules() == []
        await create_schedule(tick, ScheduleSpec(interval="1m"), schedule_id="taken")
        with pytest.raises(ScheduleExistsError, match="taken"):
            await create_schedule(tick, ScheduleSpec(cron="* * * * *"), schedule_id="taken")
        assert (await get_schedule("taken")).spec.interval == "1m"
        with pytest.raises(ScheduleNotFoundError):
            await pause_schedule("nope")
        with pytest.raises(InvalidScheduleError):
            await update_schedule("taken", overlap_policy="never")
        assert (await get_schedule("taken")).overlap_policy is OverlapPolicy.SKIP


async def test_catch_up_after_downtime(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Schedulers down for three days: by default only the latest missed slot starts; with a
    window of a day, the slots of the last day start; the rest are counted as skipped.

    (The overlap policy still applies to what catch-up starts: under SKIP the first slot of
    the window would start and the rest be skipped, since it is running.)"""
    url = f"sqlite:///{tmp_path / 'down.db'}"
    async with WorkflowEnvironment(url, start_time=START):
        await create_schedule(tick, ScheduleSpec(cron="0 * * * *"), schedule_id="latest")
        await create_schedule(
            tick,
            ScheduleSpec(cron="0 * * * *"),
            schedule_id="window",
            catchup_window="1d",
            overlap_policy=OverlapPolicy.ALLOW_ALL,  # every slot of the window, side by side
        )
    later = START + timedelta(days=3, minutes=30)
    async with WorkflowEnvironment(url, start_time=later) as env:
        await env.advance(0)
        latest = await get_schedule("latest")
        assert await slots_started("latest") == [3 * 86400]  # 00:00 of the third day
        assert (latest.total_runs, latest.skipped_runs) == (1, 72)  # slots at 0h, 1h ... 72h
        window = await get_schedule("window")
        assert await slots_started("window") == [3600.0 * h for h in range(49, 73)]
        assert (window.total_runs, window.skipped_runs) == (24, 49)
        assert window.next_run_time == START + timedelta(days=3, hours=1)


async def test_every_call_takes_the_documented_storage_argument() -> None:
    """Code written for the pyworkflow documentation passes ``storage=``: the configured one."""
    async with WorkflowEnvironment(start_time=START) as env:
        storage = env.storage
        made = await create_schedule(
            tick, ScheduleSpec(interval="1h"), schedule_id="docs", storage=storage
        )
        assert made.schedule_id == "docs"
        assert (await get_schedule("docs", storage=storage)).schedule_id == "docs"
        assert [s.schedule_id for s in await list_schedules(storage=storage)] == ["docs"]
        await update_schedule("docs", args=[7], storage=storage)
        await pause_schedule("docs", storage=storage)
        await resume_schedule("docs", storage=storage)
        run_id = await trigger_schedule("docs", storage=storage)
        ran = await backfill_schedule(
            "docs", START - timedelta(hours=2), START - timedelta(hours=1), storage=storage
        )
        assert len(ran) == 2
        assert run_id not in ran
        other = MemoryStorage()
        with pytest.raises(InputError, match="not this process's storage"):
            await create_schedule(tick, ScheduleSpec(interval="1h"), schedule_id="x", storage=other)
        with pytest.raises(InputError, match="not this process's storage"):
            await delete_schedule("docs", storage=other)
        assert [s.schedule_id for s in await list_schedules()] == ["docs"]  # nothing written
        await delete_schedule("docs", storage=storage)
        assert await list_schedules() == []
