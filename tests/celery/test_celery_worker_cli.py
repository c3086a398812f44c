"""``pyworkflow worker run --executor celery`` is a Celery worker of pyworkflow's app.

The same deployment as ``celery -A pyworkflow.celery worker`` (broker, storage and modules from
``PYWORKFLOW_*`` variables), started through our own command: it consumes the named queues,
executes a workflow's steps, and drains on SIGTERM. Its usage errors are one line, exit 2.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from celery_flows import mail
from celery_workers import Deployment

import pyworkflow
from workers import cli, subprocess_env

pytestmark = pytest.mark.slow


async def test_the_cli_worker_runs_workflows_on_celery(
    deployment: Callable[..., Deployment], client: Callable[[Deployment], None]
) -> None:
    deployed = deployment(storage="postgres", broker="redis")
    worker = deployed.workers.start(name="celery", via_cli=True, queues="pyworkflow,emails")
    client(deployed)

    before, sent, after = await pyworkflow.run(mail, "ana@example.com")

    pids = set(worker.pool_pids())
    assert {before["pid"], sent["pid"], after["pid"]} <= pids, deployed.context()
    assert sent["to"] == "ana@example.com"
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=30) == 0, worker.output()


def test_the_cli_worker_without_workflows_is_a_usage_error(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path)
    env["PYWORKFLOW_BROKER"] = "redis://127.0.0.1:6379/15"
    done = subprocess.run(
        cli("worker", "run", "--executor", "celery", "--storage", f"sqlite:///{tmp_path}/x.db"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "no workflows found" in done.stderr
