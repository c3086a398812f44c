"""The pyworkflow documentation's Celery habits, with real ``celery worker`` processes.

Their Celery examples are a project directory holding ``pyworkflow.config.yaml`` (``module``,
``runtime: celery``, ``storage: {type: sqlite, base_path: ...}``, ``celery: {broker: ...}``),
where a user types ``pyworkflow worker run`` (with ``--workflow``/``--step``/``--schedule`` and
``--autoscale`` for a split deployment), then ``pyworkflow workflows run NAME --input JSON``
and ``pyworkflow runs logs ID --filter step_completed``. Their scripts instead configure the
library (``configure(default_runtime="celery", storage=FileStorageBackend(...))``) against a
worker started as ``celery -A pyworkflow.celery.tasks worker -Q
pyworkflow.workflows,pyworkflow.steps,pyworkflow.schedules``. Both, here, in our own words:
the steps run in the workers' pool processes, and read the step context the workflow set;
a ``@scheduled_workflow`` of the worker's modules is stored and fired by the worker itself.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from celery_workers import Deployment
from seed_flows import seed_order

import pyworkflow
from pyworkflow import config
from pyworkflow.storage import FileStorageBackend
from workers import cli

pytestmark = pytest.mark.slow

SEED_QUEUES = "pyworkflow.workflows,pyworkflow.steps,pyworkflow.schedules"


def project(deployed: Deployment) -> Path:
    """Their project layout in the deployment's directory: the config file names it all."""
    (deployed.workdir / "pyworkflow.config.yaml").write_text(
        "module: seed_flows\n"
        "runtime: celery\n"
        "storage:\n"
        "  type: sqlite\n"
        "  base_path: seed_data/pyworkflow.db\n"
        "celery:\n"
        f"  broker: {deployed.broker}\n"
        "  result_backend: redis://127.0.0.1:6379/1\n"
    )
    (deployed.workdir / "seed_data").mkdir()
    return deployed.workdir


def pw(deployed: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    """``pyworkflow *args`` in the project, as a user types it (no PYWORKFLOW_* settings)."""
    env = {k: v for k, v in deployed.workers.env.items() if not k.startswith("PYWORKFLOW_")}
    return subprocess.run(
        cli(*args),
        cwd=deployed.workdir,
        env={**env, "PYWORKFLOW_HOME": deployed.workers.env.get("PYWORKFLOW_HOME", "")},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_a_config_file_project_with_the_cli(deployment: Callable[..., Deployment]) -> None:
    deployed = deployment(storage="sqlite", broker="redis")
    project(deployed)
    # No --executor: the file's runtime: celery makes it a Celery worker; the split flags of
    # their docs are accepted (each worker here serves every kind of task).
    worker = deployed.workers.start(
        name="celery",
        argv=[
            *cli("worker", "run", "--workflow", "--step", "--schedule"),
            *("--autoscale", "2,1", "--loglevel", "info", "--", "--without-mingle"),
        ],
        env={"PYWORKFLOW_STORAGE": "", "PYWORKFLOW_MODULES": ""},
    )

    order = '{"order_id": "o-1", "amount": 9.5}'
    started = pw(deployed, "workflows", "run", "seed_order", "--input", order)
    assert started.returncode == 0, started.stdout + started.stderr + deployed.context()
    assert "completed" in started.stdout, started.stdout
    listed = pw(deployed, "--output", "json", "runs", "list", "--workflow", "seed_order")
    (run,) = json.loads(listed.stdout)["runs"]
    shown = json.loads(pw(deployed, "--json", "runs", "status", run["run_id"]).stdout)
    assert shown["status"] == "completed", shown
    result = shown["result"]
    assert result["tenant"] == "acme"
    assert result["flags"] == {"express": True}
    pool = set(worker.pool_pids())
    assert {result["pid"], result["charge_pid"]} <= pool, deployed.context()
    # The file's storage, not the environment's.
    assert (deployed.workdir / "seed_data" / "pyworkflow.db").exists()

    logs = pw(deployed, "runs", "logs", run["run_id"], "--filter", "step_completed")
    assert logs.returncode == 0, logs.stderr
    lines = [line for line in logs.stdout.splitlines() if "step_" in line or "workflow_" in line]
    assert len(lines) == 2, logs.stdout
    assert all("step_completed" in line for line in lines), logs.stdout
    everything = pw(deployed, "runs", "logs", run["run_id"], "--json")
    assert len(json.loads(everything.stdout)["events"]) > 2


async def test_their_celery_command_line_and_a_script_client(
    deployment: Callable[..., Deployment], monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed = deployment(storage="sqlite", broker="redis")
    data = deployed.workdir / ".workflow_data"
    worker = deployed.workers.start(
        name="seed",
        argv=[
            *(sys.executable, "-m", "celery", "-A", "pyworkflow.celery.tasks", "worker"),
            *("-Q", SEED_QUEUES, "-l", "info", "-n", "seed@%h", "-c", "2"),
            *("--without-mingle", "--without-gossip", "--without-heartbeat"),
        ],
        env={
            "PYWORKFLOW_STORAGE": f"sqlite:///{data / 'pyworkflow.db'}",
            "PYWORKFLOW_MODULES": "seed_flows,seed_scheduled",
        },
    )
    assert "pyworkflow.steps" in worker.output()

    monkeypatch.setattr(config, "_settings", config._Settings())
    storage = FileStorageBackend(base_path=str(data))
    pyworkflow.configure(
        storage=storage,
        default_runtime="celery",
        default_durable=True,
        celery_broker=deployed.broker,
    )
    try:
        run_id = await pyworkflow.start(seed_order, "o-2", 3.0)
        result = await pyworkflow.get_workflow_result(run_id, timeout=60, storage=storage)
        assert result["tenant"] == "acme"
        assert {result["pid"], result["charge_pid"]} <= set(worker.pool_pids())
        chain = await pyworkflow.get_workflow_chain(run_id, storage=pyworkflow.get_storage())
        assert [r.run_id for r in chain] == [run_id]
        refused = await pyworkflow.start(seed_order, "o-3", 0.0)
        with pytest.raises(pyworkflow.WorkflowFailedError, match="amount must be positive"):
            await pyworkflow.get_workflow_result(refused, timeout=60)
        # The worker stored the schedule its module declares, and fires it: no beat, no
        # other process.
        ran: list[pyworkflow.WorkflowRun] = []
        deadline = asyncio.get_running_loop().time() + 30
        while len(ran) < 2:
            assert asyncio.get_running_loop().time() < deadline, deployed.context()
            await asyncio.sleep(0.5)
            ran = await pyworkflow.list_workflow_runs(
                workflow_name="seed_metrics", status="completed", schedule_id="seed-metrics"
            )
        schedule = await pyworkflow.get_schedule("seed-metrics")
        assert schedule.total_runs >= 2
    finally:
        await pyworkflow.shutdown()
