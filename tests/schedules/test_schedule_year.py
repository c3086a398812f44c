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
