"""Each overlap policy under a workflow that overruns its schedule's interval (virtual clock).

An every-minute schedule whose runs take two and a half minutes, watched for ten minutes:
eleven slots (0, 60, ... 600 s). What each policy must do is what its name says; the run rows
(their slots, start and end times, statuses) are what a user would look at.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from pyworkflow import (
    OverlapPolicy,
    RunStatus,
    Schedule,
    ScheduleSpec,
    WorkflowRun,
    create_schedule,
    get_schedule,
    list_schedules,
    list_workflow_runs,
    sleep,
    workflow,
)
from pyworkflow.testing import WorkflowEnvironment

START = datetime(2026, 6, 1, tzinfo=UTC)
SLOTS = 11  # 0, 60, ... 600 seconds


@workflow(name="ts_overrun")
async def overrun() -> str:
    await sleep(150)
    return "done"


async def watch(policy: OverlapPolicy, env: WorkflowEnvironment) -> list[WorkflowRun]:
    await create_schedule(overrun, ScheduleSpec(interval="1m"), overlap_policy=policy)
    await env.advance(600)
    runs = await list_workflow_runs(workflow_name="ts_overrun", limit=100)
    return sorted(runs, key=lambda r: r.created_at)


def offsets(runs: list[WorkflowRun]) -> list[float]:
    return [(r.schedule_slot_at - START).total_seconds() for r in runs if r.schedule_slot_at]


def started(runs: list[WorkflowRun]) -> list[float]:
    return [(r.created_at - START).total_seconds() for r in runs]


async def _only_schedule() -> Schedule:
    (schedule,) = await list_schedules()
    return schedule


def never_overlap(runs: list[WorkflowRun]) -> None:
    for before, after in itertools.pairwise(runs):
        assert before.completed_at is not None
        assert after.created_at >= before.completed_at, (before, after)


async def test_skip_starts_a_slot_only_when_no_run_is_going() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        runs = await watch(OverlapPolicy.SKIP, env)
        assert offsets(runs) == [0, 180, 360, 540]
        assert started(runs) == [0, 180, 360, 540]  # each at its slot, none late
        schedule = await get_schedule((await _only_schedule()).schedule_id)
        assert (schedule.total_runs, schedule.skipped_runs) == (4, SLOTS - 4)


async def test_buffer_one_starts_one_waiting_slot_when_the_run_ends() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        runs = await watch(OverlapPolicy.BUFFER_ONE, env)
        never_overlap(runs)
        # Each buffered run starts within a second of the end of the one before it.
        for before, after in itertools.pairwise(runs):
            assert before.completed_at is not None
            assert (after.created_at - before.completed_at).total_seconds() <= 1.0
        assert offsets(runs) == sorted(offsets(runs))
        schedule = await _only_schedule()
        assert schedule.buffered_runs <= 1
        assert schedule.total_runs == len(runs) >= 4
        assert schedule.total_runs + schedule.skipped_runs + schedule.buffered_runs == SLOTS


async def test_buffer_all_starts_every_slot_one_after_another() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        runs = await watch(OverlapPolicy.BUFFER_ALL, env)
        never_overlap(runs)
        assert offsets(runs) == [60.0 * i for i in range(len(runs))]  # in slot order
        schedule = await _only_schedule()
        assert schedule.skipped_runs == 0
        assert schedule.total_runs + schedule.buffered_runs == SLOTS  # the rest still wait
        assert schedule.buffered_runs > 0


async def test_cancel_other_cancels_the_running_run_and_starts_at_once() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        runs = await watch(OverlapPolicy.CANCEL_OTHER, env)
        assert offsets(runs) == [60.0 * i for i in range(SLOTS)]
        assert started(runs) == [60.0 * i for i in range(SLOTS)]
        assert [r.status for r in runs[:-1]] == [RunStatus.CANCELLED] * (SLOTS - 1)
        assert runs[-1].status is RunStatus.SUSPENDED  # the last one sleeps on


async def test_allow_all_starts_every_slot_beside_the_running_ones() -> None:
    async with WorkflowEnvironment(start_time=START) as env:
        runs = await watch(OverlapPolicy.ALLOW_ALL, env)
        assert started(runs) == [60.0 * i for i in range(SLOTS)]
        ended = [r for r in runs if r.status is RunStatus.COMPLETED]
        assert len(ended) == 8  # those started by 420 s ended by 570 s
        schedule = await _only_schedule()
        assert (schedule.total_runs, schedule.skipped_runs) == (SLOTS, 0)
