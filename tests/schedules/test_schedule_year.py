"""A year of a schedule on the virtual clock: exactly the expected slots, across both DST changes.

The slots expected are computed here from the calendar (every weekday of the year at 09:00
local), not from the library the scheduler uses, so the test fails if a slot is lost, doubled or
shifted by a daylight-saving change.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pyworkflow import (
    ScheduleSpec,
    create_schedule,
    get_schedule,
    list_workflow_runs,
    workflow,
)
from pyworkflow.testing import WorkflowEnvironment

START = datetime(2026, 1, 1, tzinfo=UTC)


@workflow(name="ts_year_report")
async def report(label: str) -> str:
    return label


def weekdays_at_nine(zone: str, year: int) -> list[datetime]:
    """Every Monday-Friday of ``year`` at 09:00 in ``zone``, as UTC datetimes."""
    tz = ZoneInfo(zone)
    day, slots = date(year, 1, 1), []
    while day.year == year:
        if day.weekday() < 5:
            slots.append(datetime(day.year, day.month, day.day, 9, tzinfo=tz).astimezone(UTC))
        day += timedelta(days=1)
    return slots


@pytest.mark.parametrize("zone", ["Europe/Prague", "America/New_York"])
async def test_a_year_of_weekday_mornings_starts_one_run_per_slot(zone: str) -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        created = await create_schedule(
            report,
            ScheduleSpec(cron="0 9 * * 1-5", timezone=zone),
            args=["daily"],
            schedule_id=f"year-{zone}",
        )
        first = weekdays_at_nine(zone, 2026)[0]
        assert created.next_run_time == first
        await env.advance(datetime(2027, 1, 1, tzinfo=UTC) - START)
        runs = await list_workflow_runs(workflow_name="ts_year_report", limit=1000)
        slots = sorted(run.schedule_slot_at for run in runs)
        expected = [s for s in weekdays_at_nine(zone, 2026) if s < datetime(2027, 1, 1, tzinfo=UTC)]
        assert slots == expected  # 261 weekdays; 08:00 UTC in winter, 07:00 in summer ...
        assert all(run.status.value == "completed" for run in runs)
        assert {run.result for run in runs} == {"daily"}
        local = {s.astimezone(ZoneInfo(zone)).time().isoformat() for s in slots}
        assert local == {"09:00:00"}  # 09:00 local across both DST changes
        schedule = await get_schedule(f"year-{zone}")
        assert (schedule.total_runs, schedule.skipped_runs) == (len(expected), 0)
        assert schedule.successful_runs == len(expected)


SPRING = {"Europe/Prague": date(2026, 3, 29), "America/New_York": date(2026, 3, 8)}
AUTUMN = {"Europe/Prague": date(2026, 10, 25), "America/New_York": date(2026, 11, 1)}
# Each zone's skipped hour (spring) and repeated hour (autumn), and its summer UTC offset.
HOURS = {"Europe/Prague": (2, 2, 2), "America/New_York": (2, 1, -4)}


@pytest.mark.parametrize("zone", ["Europe/Prague", "America/New_York"])
async def test_slots_in_the_hours_dst_skips_or_repeats_run_once_a_day(zone: str) -> None:
    """HH:30 every day, for the hour that daylight saving skips in spring and the one it
    repeats in autumn: on the spring night the skipped time runs once, at 03:00; on the
    autumn night the repeated time runs once, at its first pass. 365 runs a year each."""
    tz = ZoneInfo(zone)
    skipped, repeated, summer = HOURS[zone]
    async with WorkflowEnvironment(start_time=START) as env:
        for hour in {skipped, repeated}:
            spec = ScheduleSpec(cron=f"30 {hour} * * *", timezone=zone)
            await create_schedule(report, spec, args=["night"], schedule_id=f"at-{hour}")
        await env.advance(datetime(2027, 1, 1, tzinfo=UTC) - START)
        for hour in {skipped, repeated}:
            runs = await list_workflow_runs(schedule_id=f"at-{hour}", limit=1000)
            local = sorted(r.schedule_slot_at.astimezone(tz) for r in runs if r.schedule_slot_at)
            by_day = {moment.date(): moment for moment in local}
            assert len(local) == len(by_day) == 365  # one run every day: none lost or doubled
            usual = {m.time().isoformat() for d, m in by_day.items() if d != SPRING[zone]}
            assert usual == {f"0{hour}:30:00"}
            if hour == skipped:  # HH:30 did not exist that night: 03:00, the first after it
                assert by_day[SPRING[zone]].time().isoformat() == "03:00:00"
            if hour == repeated:  # HH:30 came twice that night: the first (summer time) only
                autumn = by_day[AUTUMN[zone]]
                assert autumn.time().isoformat() == f"0{hour}:30:00"
                assert autumn.utcoffset() == timedelta(hours=summer)
