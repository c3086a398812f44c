"""Queues and client-only processes in one process: what is stored, and bad settings refused.

Real workers executing the runs of their queues are in tests/executors/test_queue_workers.py.
"""

from __future__ import annotations

import pytest

import pyworkflow
from pyworkflow import config, step, workflow
from pyworkflow.events import RunStatus
from pyworkflow.exceptions import ConfigurationError, WorkflowDefinitionError
from pyworkflow.executors.local import LocalExecutor
from pyworkflow.serialization import Codec
from pyworkflow.storage import Storage
from pyworkflow.testing import WorkflowEnvironment


@step()
async def queue_test_double(n: int) -> int:
    return 2 * n


@workflow()
async def queue_test_plain(n: int) -> int:
    return await queue_test_double(n)


@workflow(queue="queue-test-billing")
async def queue_test_billed(n: int) -> int:
    return await queue_test_double(n)


def test_a_workflow_names_its_queue_and_defaults_to_pyworkflow() -> None:
    assert queue_test_billed.queue == "queue-test-billing"
    assert queue_test_plain.queue == "pyworkflow"


@pytest.mark.parametrize(
    ("bad", "said"),
    [("", "non-empty string"), (7, "non-empty string"), ("a,b", "comma"), (" a", "whitespace")],
)
def test_a_bad_workflow_queue_fails_at_decoration_naming_it(bad: object, said: str) -> None:
    with pytest.raises(WorkflowDefinitionError, match=said) as caught:

        @workflow(queue=bad)  # type: ignore[arg-type]
        async def badly_queued() -> None: ...

    assert "badly_queued" in str(caught.value)
    assert repr(bad) in str(caught.value)


@pytest.mark.parametrize(("bad", "said"), [([], "non-empty list"), (["x", ""], "non-empty")])
def test_bad_configured_queues_are_a_configuration_error(bad: object, said: str) -> None:
    saved = config.snapshot()
    try:
        with pytest.raises(ConfigurationError, match=said):
            pyworkflow.configure(queues=bad)  # type: ignore[arg-type]
    finally:
        config.restore(saved)


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("PYWORKFLOW_QUEUES", "billing,,reports", "PYWORKFLOW_QUEUES"),
        ("PYWORKFLOW_CLIENT_ONLY", "perhaps", "PYWORKFLOW_CLIENT_ONLY"),
    ],
)
def test_bad_environment_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    monkeypatch.setattr(config, "_settings", config._Settings())
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=said) as caught:
        config.served_queues() if variable == "PYWORKFLOW_QUEUES" else config.client_only()
    assert value in str(caught.value)


def test_the_environment_sets_queues_and_client_only_and_configure_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config, "_settings", config._Settings())
    assert (config.served_queues(), config.client_only()) == (("pyworkflow",), False)
    monkeypatch.setenv("PYWORKFLOW_QUEUES", " billing, reports ,billing")
    monkeypatch.setenv("PYWORKFLOW_CLIENT_ONLY", "1")
    assert (config.served_queues(), config.client_only()) == (("billing", "reports"), True)
    pyworkflow.configure(queues="gpu", client_only=False)
    assert (config.served_queues(), config.client_only()) == (("gpu",), False)


async def test_a_run_of_a_queue_this_process_does_not_serve_is_stored_for_a_worker(
    pw_sqlite: Storage,
) -> None:
    billed = await pyworkflow.start(queue_test_billed, 2)
    stored = await pw_sqlite.get_run(billed)
    assert stored is not None
    # Not driven here: no first turn (only WORKFLOW_STARTED), no lease, due for a worker.
    assert (stored.queue, stored.status, stored.last_seq) == (
        "queue-test-billing",
        RunStatus.PENDING,
        1,
    )
    assert stored.lease_owner is None
    # The default queue's runs are still executed here: a plain script needs no worker.
    assert await pyworkflow.run(queue_test_plain, 4) == 8
    assert (await pyworkflow.get_workflow_run(billed)).status is RunStatus.PENDING


async def test_a_client_only_process_executes_nothing_and_waits_for_a_worker(
    pw_sqlite: Storage,
) -> None:
    pyworkflow.configure(client_only=True)
    run_id = await pyworkflow.start(queue_test_plain, 5)
    stored = await pw_sqlite.get_run(run_id)
    assert stored is not None
    assert (stored.status, stored.last_seq, stored.lease_owner) == (RunStatus.PENDING, 1, None)
    with pytest.raises(TimeoutError):
        await pyworkflow.get_workflow_result(run_id, timeout=0.3)
    assert (await pw_sqlite.get_run(run_id)) == stored  # nobody claimed it meanwhile
    # A worker (here an executor of its own on the same database) finishes it for the client.
    worker = LocalExecutor(pw_sqlite, Codec(), poll_interval=0.05)
    worker.serve_in_background()
    try:
        assert await pyworkflow.get_workflow_result(run_id, timeout=30) == 10
        finished = await pw_sqlite.get_run(run_id)
        assert finished is not None
        assert finished.lease_owner is None
    finally:
        await worker.shutdown()


async def test_a_client_only_executor_refuses_to_serve(pw_memory: Storage) -> None:
    executor = LocalExecutor(pw_memory, Codec(), client_only=True)
    with pytest.raises(ConfigurationError, match="client only"):
        await executor.serve()


async def test_the_test_environment_executes_runs_of_every_queue() -> None:
    # A user's tests of a routed workflow need no worker of its queue.
    async with WorkflowEnvironment() as env:
        run_id = await env.start(queue_test_billed, 3)
        assert await env.result(run_id, timeout=5) == 6
