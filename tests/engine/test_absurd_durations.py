"""Durations past what storage and datetime can hold are refused; stored ones break no query.

Every duration is bounded to 100 years (``durations.MAX_DURATION_SECONDS``): ``sleep(10**20)``
once logged ``wake_at=1e20``, and from then on ``get_workflow_run`` and every
``list_workflow_runs`` raised ``OverflowError``. Now the workflow sees ``InvalidDurationError``
quoting the value, a ``RetryableError``'s absurd ``retry_after`` falls back to the step's own
delay, and a time already stored out of range (by an older version, or by hand) is shown as the
nearest datetime there is, the run view saying so, while the other runs list as usual. The
refusals run on the virtual clock (conftest.py); a stored time out of range, on every backend.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pyworkflow
from pyworkflow import EventType, RetryableError, RunStatus, hook, sleep, step, workflow
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import AppendWrite, NewRun
from pyworkflow.testing import WorkflowEnvironment

from .run_log import failure_of

HUGE = 10**20


@workflow(name="ad_hook_forever")
async def hook_forever() -> Any:
    return await hook("approval", timeout=HUGE)


_tries = {"count": 0}


@step(name="ad_rate_limited", max_retries=2, retry_delay="10ms")
async def rate_limited() -> str:
    _tries["count"] += 1
    if _tries["count"] == 1:
        raise RetryableError("come back much later", retry_after=HUGE)
    return "served"


@workflow(name="ad_patient")
async def patient() -> str:
    return await rate_limited()


@workflow(name="ad_quick")
async def quick() -> str:
    return "done"


@workflow(name="ad_sleeper")
async def sleeper() -> str:
    await sleep(HUGE)
    return "woke"


async def test_sleep_of_an_absurd_duration_fails_the_run_and_queries_still_work(
    env: WorkflowEnvironment,
) -> None:
    run_id = await pyworkflow.start(sleeper)
    err = await failure_of(run_id)
    assert err.error_type == "pyworkflow.exceptions.InvalidDurationError"
    assert str(HUGE) in err.error_message
    assert "100 years" in err.error_message
    events = await pyworkflow.get_workflow_events(run_id)
    assert EventType.SLEEP_STARTED not in [e.type for e in events]
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.FAILED
    assert [r.run_id for r in await pyworkflow.list_workflow_runs()] == [run_id]


async def test_a_hook_timeout_of_an_absurd_duration_fails_the_run(env: WorkflowEnvironment) -> None:
    run_id = await pyworkflow.start(hook_forever)
    err = await failure_of(run_id)
    assert err.error_type == "pyworkflow.exceptions.InvalidDurationError"
    assert str(HUGE) in err.error_message
    assert await pyworkflow.list_hooks(run_id=run_id) == []


async def test_an_absurd_retry_after_falls_back_to_the_steps_retry_delay(
    env: WorkflowEnvironment,
) -> None:
    _tries["count"] = 0
    run_id = await pyworkflow.start(patient)
    assert await pyworkflow.get_workflow_result(run_id, timeout=5) == "served"
    assert _tries["count"] == 2
    assert [r.status for r in await pyworkflow.list_workflow_runs()] == [RunStatus.COMPLETED]


async def _stored_with_wake_at(storage: Storage, run_id: str, wake_at: float) -> None:
    """A suspended run waiting until ``wake_at``, written as an older pyworkflow wrote it."""
    now = time.time()
    await storage.create_run(NewRun(run_id, "ad_elsewhere", {"args": [], "kwargs": {}}, {}, now))
    await storage.claim_runs(
        owner="old", now=now, lease_expires_at=now + 60, limit=1, run_ids=[run_id]
    )
    await storage.append(
        AppendWrite(
            run_id=run_id,
            owner="old",
            expected_seq=1,
            events=[],
            now=now,
            status=RunStatus.SUSPENDED,
            wake_at=wake_at,
            lease_expires_at=None,
        )
    )


async def test_a_stored_time_no_datetime_can_hold_never_stops_a_query(pw: Storage) -> None:
    # On every backend (tests/conftest.py's ``pw``): what each one stores for such a time.
    sound = await pyworkflow.start(quick)
    await pyworkflow.get_workflow_result(sound, timeout=10)
    await _stored_with_wake_at(pw, "run_far", 1e20)
    await _stored_with_wake_at(pw, "run_before_year_one", -1e20)

    far = await pyworkflow.get_workflow_run("run_far")
    assert far.status is RunStatus.SUSPENDED
    assert far.wake_at == datetime.max.replace(tzinfo=UTC)
    assert far.damage is not None
    assert "runs.wake_at of run 'run_far'" in far.damage
    assert "1e+20" in far.damage
    before = await pyworkflow.get_workflow_run("run_before_year_one")
    assert before.wake_at == datetime.min.replace(tzinfo=UTC)
    assert before.damage is not None

    listed = {r.run_id: r for r in await pyworkflow.list_workflow_runs()}
    assert set(listed) == {sound, "run_far", "run_before_year_one"}
    assert listed[sound].damage is None
    assert listed[sound].status is RunStatus.COMPLETED
    assert listed["run_far"].damage == far.damage
