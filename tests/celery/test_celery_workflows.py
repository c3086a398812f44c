"""Representative workflows run unchanged on real Celery workers, on two deployments.

``redis+postgres``: Redis broker, PostgreSQL storage (a fresh schema). ``rabbitmq+sqlite``:
RabbitMQ broker, an SQLite file. Each has one ``celery -A pyworkflow.celery worker -c 2``
for the module; this process only starts runs and waits for their results, as a client of
the deployment would. The workflows are tests/celery/celery_flows.py: sequential steps,
``asyncio.gather`` of steps and of branches (and of many steps, each executed once), a durable
sleep, retries, a ``FatalError``, ``force_local`` steps (also in a first turn with recorded
values), a hook used inside a step (a typed error), workflows without steps or failing at
once, and ``continue_as_new``.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable

import pytest
from celery_flows import (
    contexts,
    countdown,
    fails_at_once,
    fan_out,
    fatal,
    hook_in_step_wf,
    local,
    local_first,
    nap,
    no_steps,
    retrying,
    sequence,
    tenant_context,
    wide,
)
from celery_runs import events, types
from celery_workers import Deployment

import pyworkflow
from pyworkflow import EventType, RunStatus, WorkflowFailedError
from pyworkflow import runtime as pw_runtime
from pyworkflow.testing import replay_runs
from workers import executions_in

pytestmark = pytest.mark.slow

RESULT_WITHIN = 30
EXPECTED_ERRORS = ("cf_refuse#1 failed", "cf_hook_in_step#1 failed", "workflow failed")
WIDTH = 10


@pytest.fixture
def on(deployed: Deployment, client: Callable[[Deployment], None]) -> Deployment:
    """This process connected to the module's deployment."""
    client(deployed)
    return deployed


async def test_a_step_on_a_worker_knows_its_run_and_position(on: Deployment) -> None:
    run_id = await pyworkflow.start(contexts)
    first, second = await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN)

    for n, seen in enumerate((first, second), 1):
        step_id = f"cf_context#{n}"
        assert seen == {
            "run_id": run_id,
            "workflow": "cf_contexts",
            "step_id": step_id,
            "attempt": 1,
            "key": f"{run_id}:{step_id}",
        }


async def test_a_step_on_a_worker_reads_the_step_context_the_workflow_set(
    on: Deployment,
) -> None:
    run_id = await pyworkflow.start(tenant_context, "acme")
    first, second = await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN)
    assert {k: first[k] for k in ("type", "tenant", "tier")} == {
        "type": "CfTenant",
        "tenant": "acme",
        "tier": 1,
    }
    assert (second["tenant"], second["tier"]) == ("acme", 2)  # the update, from the log
    assert first["pid"] != os.getpid()  # run by a Celery worker, not here


async def test_sequential_steps(on: Deployment) -> None:
    result = await pyworkflow.run(sequence, 5)
    assert result == [6, 16, 116]

    [run] = await pyworkflow.list_workflow_runs(workflow_name="cf_sequence")
    history = await events(run.run_id)
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    assert [e.type for e in history] == [
        EventType.WORKFLOW_STARTED,
        *[EventType.STEP_STARTED, EventType.STEP_COMPLETED] * 3,
        EventType.WORKFLOW_COMPLETED,
    ]
    assert [e.payload["step_id"] for e in history if e.type is EventType.STEP_COMPLETED] == [
        "cf_add#1",
        "cf_add#2",
        "cf_add#3",
    ]


async def test_gather_of_steps_and_of_branches(on: Deployment) -> None:
    run_id = await pyworkflow.start(fan_out, 10)
    result = await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN)

    assert result == [[10, 11, 12, 13], [11, 12, 13]]
    history = await types(run_id)
    assert history.count(EventType.STEP_COMPLETED) == 4 + 3 * 2
    assert history[-1] is EventType.WORKFLOW_COMPLETED


async def test_a_durable_sleep(on: Deployment) -> None:
    began = time.monotonic()
    run_id = await pyworkflow.start(nap, 1.0)
    slept = await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN)

    assert slept >= 1.0
    assert time.monotonic() - began >= 1.0
    history = await types(run_id)
    assert history.count(EventType.SLEEP_STARTED) == history.count(EventType.SLEEP_COMPLETED) == 1


async def test_a_step_failing_twice_is_retried_and_succeeds(on: Deployment) -> None:
    run_id = await pyworkflow.start(retrying, 2)
    assert await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN) == 3

    history = await events(run_id)
    retried = [e for e in history if e.type is EventType.STEP_RETRYING]
    assert [e.payload["attempt"] for e in retried] == [1, 2]
    started = [e.payload["attempt"] for e in history if e.type is EventType.STEP_STARTED]
    assert started == [1, 2, 3]
    assert [e.type for e in history].count(EventType.STEP_COMPLETED) == 1


async def test_a_fatal_error_fails_the_run_without_retries(on: Deployment) -> None:
    run_id = await pyworkflow.start(fatal, "card declined")
    with pytest.raises(WorkflowFailedError) as failed:
        await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN)

    assert failed.value.run_id == run_id
    assert failed.value.error_type.endswith("FatalError")
    assert "card declined" in failed.value.error_message
    history = await events(run_id)
    attempts = Counter(e.payload["step_id"] for e in history if e.type is EventType.STEP_STARTED)
    assert attempts == {"cf_add#1": 1, "cf_refuse#1": 1}
    assert history[-1].type is EventType.WORKFLOW_FAILED
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.FAILED


async def test_a_force_local_step_runs_inline_in_the_orchestrating_turn(on: Deployment) -> None:
    run_id = await pyworkflow.start(local)
    pids = await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN)

    assert pids["local"] == pids["turn"], "force_local ran away from the turn that drove on"
    # The task that executed the remote step drives the turn that logs it, and that turn runs
    # the force_local step inline: one process, no second broker hop.
    assert pids["local"] == pids["remote"]
    assert pids["local"] != os.getpid()
    pool = on.workers.started[0].pool_pids()
    assert pids["local"] in pool, f"{pids} not a pool process of the worker {pool}"
    history = await events(run_id)
    local_events = [e.type for e in history if e.payload.get("step_id") == "cf_local_where#1"]
    assert local_events == [EventType.STEP_STARTED, EventType.STEP_COMPLETED]


async def test_hook_inside_a_step_fails_the_run_with_the_typed_error(on: Deployment) -> None:
    run_id = await pyworkflow.start(hook_in_step_wf)
    with pytest.raises(WorkflowFailedError) as failed:
        await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN)

    assert failed.value.error_type.rsplit(".", 1)[-1] == "NotInWorkflowError"
    assert "inside a step" in failed.value.error_message
    assert (await types(run_id))[-1] is EventType.WORKFLOW_FAILED


async def test_a_workflow_without_steps_and_one_failing_at_once(on: Deployment) -> None:
    assert await pyworkflow.run(no_steps, 41) == 42
    with pytest.raises(WorkflowFailedError) as failed:
        await pyworkflow.run(fails_at_once, "bad input")
    assert failed.value.error_type.rsplit(".", 1)[-1] == "ValueError"
    assert failed.value.error_message == "bad input"


async def test_continue_as_new_chains_runs(on: Deployment) -> None:
    first = await pyworkflow.start(countdown, 2, 0)
    assert await pyworkflow.get_workflow_result(first, timeout=RESULT_WITHIN) == 3  # 2 + 1 + 0

    chain = await pyworkflow.get_workflow_chain(first)
    assert len(chain) == 3
    assert [r.status for r in chain] == [RunStatus.CONTINUED_AS_NEW] * 2 + [RunStatus.COMPLETED]


async def test_many_steps_at_once_each_execute_once(on: Deployment) -> None:
    """Their outcomes all want the run's lease to be logged: none is dropped and re-run."""
    run_id = await pyworkflow.start(wide, WIDTH)
    result = await pyworkflow.get_workflow_result(run_id, timeout=60)

    assert result == [i * 2 + 1 for i in range(WIDTH)]
    executions = executions_in(on.workdir / "side_effects.log")
    assert {step: n for (run, step), n in executions.items() if run == run_id} == {
        f"cf_work#{i + 1}": 1 for i in range(WIDTH)
    }


async def test_a_first_turn_of_recorded_values_and_a_force_local_step(on: Deployment) -> None:
    run_id = await pyworkflow.start(local_first)
    started, key, pid, after = await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN)

    assert pid != os.getpid(), "the force_local step ran in the process that started the run"
    assert pid in on.workers.started[0].pool_pids()
    history = await events(run_id)
    recorded = [e for e in history if e.type is EventType.SIDE_EFFECT_RECORDED]
    assert len(recorded) == 2
    assert abs(started.timestamp() - time.time()) < 60
    assert len(key) == 36
    assert after["tag"] == "after"
    assert [e.payload["step_id"] for e in history if e.type is EventType.STEP_STARTED] == [
        "cf_local_where#1",
        "cf_where#1",
    ]


async def test_histories_written_on_celery_replay_on_todays_code(on: Deployment) -> None:
    # The log a Celery deployment writes is the one the local executor writes: the replay
    # checker (what a user runs before a deploy) replays it without divergence.
    run_ids = [
        await pyworkflow.start(sequence, 2),
        await pyworkflow.start(fan_out, 3),
        await pyworkflow.start(retrying, 1),
        await pyworkflow.start(local),
    ]
    for run_id in run_ids:
        await pyworkflow.get_workflow_result(run_id, timeout=RESULT_WITHIN)

    storage = (await pw_runtime.get_runtime()).storage
    results = await replay_runs(storage, run_ids=run_ids)

    assert [r.run_id for r in results] == run_ids
    assert all(r.ok for r in results), [(r.divergence, r.error) for r in results]
    assert all(r.event_count > 4 for r in results)
