"""The CLI as the pyworkflow documentation spells it, each spelling in a real subprocess.

Global ``--module``/``--storage``/``--output``/``--json`` before the command; ``runs status`` and
``runs logs``; ``runs cancel --wait``; ``workflows run --input``; ``hooks list --status
pending``; ``worker status|list|queues`` against a live worker; ``setup`` and ``quickstart``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from workers import WorkerProcesses, cli, subprocess_env

pytestmark = pytest.mark.slow

MODULE = textwrap.dedent(
    """
    import asyncio
    from pyworkflow import hook, step, workflow

    @step
    async def sp_add(a: int, b: int) -> int:
        return a + b

    @workflow
    async def sp_sum(a: int, b: int) -> int:
        return await sp_add(a, b)

    @workflow
    async def sp_waits() -> object:
        return await hook("sp_approval")

    @step
    async def sp_slow() -> None:
        await asyncio.sleep(1)

    @workflow
    async def sp_long() -> None:
        for _ in range(60):  # a cancel stops it at the next step
            await sp_slow()
    """
)


def pw(
    cwd: Path, env: dict[str, str], *args: str, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        cli(*args), cwd=cwd, env=env, capture_output=True, text=True, timeout=90, check=False
    )
    if ok:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str], str]:
    (tmp_path / "spwf.py").write_text(MODULE)
    return tmp_path, subprocess_env(tmp_path), f"sqlite:///{tmp_path / 'sp.db'}"


def test_global_options_and_run_aliases(project: tuple[Path, dict[str, str], str]) -> None:
    cwd, env, url = project
    started = pw(cwd, env, "--module", "spwf", "--storage", url, "--output", "json",
                 "workflows", "run", "sp_sum", "--input", '{"a": 2, "b": 3}')  # fmt: skip
    last = json.loads(started.stdout.splitlines()[-1])  # JSON Lines: an event a line, then the run
    run_id = last["run"]["run_id"]
    assert last["run"]["result"] == 5
    listed = as_json(pw(cwd, env, "--storage", url, "--json", "runs", "list"))
    assert [r["run_id"] for r in listed["runs"]] == [run_id]
    status = as_json(pw(cwd, env, "--storage", url, "--json", "runs", "status", run_id))
    assert status["status"] == "completed"
    logs = as_json(pw(cwd, env, "--storage", url, "--json", "runs", "logs", run_id))
    assert logs["events"][-1]["type"] == "workflow_completed"
    # Given after the command too, the command's own value wins over the global one.
    other = f"sqlite:///{cwd / 'other.db'}"
    pw(cwd, env, "--storage", other, "db", "upgrade")
    mine = as_json(pw(cwd, env, "--storage", other, "runs", "list", "--storage", url, "--json"))
    assert len(mine["runs"]) == 1
    table = pw(cwd, env, "--storage", url, "runs", "list").stdout
    assert run_id in table
    assert not table.lstrip().startswith("{")


def test_hooks_pending_cancel_wait_and_live_workers(
    project: tuple[Path, dict[str, str], str],
) -> None:
    cwd, env, url = project
    pw(cwd, env, "--storage", url, "db", "upgrade")
    assert as_json(pw(cwd, env, "--storage", url, "--json", "worker", "list")) == {"workers": []}
    workers = WorkerProcesses(cwd, env)
    log = cwd / "worker.log"
    try:
        proc = workers.start("--module", "spwf", "--storage", url, "worker", "run", log=log)
        waiting = as_json(pw(cwd, env, "-m", "spwf", "--storage", url, "--json",
                             "workflows", "run", "sp_waits", "--no-wait"))["run_id"]  # fmt: skip
        long = as_json(pw(cwd, env, "-m", "spwf", "--storage", url, "--json",
                          "workflows", "run", "sp_long", "--no-wait"))["run_id"]  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            hooks = as_json(pw(cwd, env, "--storage", url, "--json",
                               "hooks", "list", "--status", "pending"))["hooks"]  # fmt: skip
            live = as_json(pw(cwd, env, "--storage", url, "--json", "worker", "status"))
            held = sum(w["runs_held"] for w in live["workers"])
            if hooks and held >= 1:
                break
            assert time.monotonic() < deadline, (hooks, live, log.read_text())
            time.sleep(0.5)
        assert [h["run_id"] for h in hooks] == [waiting]
        assert [w["pid"] for w in live["workers"]] == [proc.pid]
        assert as_json(pw(cwd, env, "--storage", url, "--json", "worker", "list")) == live
        queues = as_json(pw(cwd, env, "--storage", url, "--json", "worker", "queues"))["queues"]
        assert [q["queue"] for q in queues] == ["pyworkflow"]
        counts = queues[0]
        assert counts["held"] + counts["waiting_for_worker"] + counts["later"] == 2
        assert counts["later"] >= 1  # the run waiting on its hook
        cancelled = pw(cwd, env, "--storage", url, "--json", "runs", "cancel", long, "--wait",
                       "--timeout", "60")  # fmt: skip
        assert as_json(cancelled)["status"] == "cancelled"
    finally:
        workers.kill_started()
    assert proc.returncode is not None


def test_setup_and_quickstart(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path)
    setup_dir = tmp_path / "existing"
    setup_dir.mkdir()
    pw(setup_dir, env, "setup", "--non-interactive", "--module", "app.flows",
       "--storage", "sqlite", "--storage-path", "./runs.db")  # fmt: skip
    text = (setup_dir / "pyworkflow.config.yaml").read_text()
    assert "module: app.flows" in text
    assert "path: ./runs.db" in text
    again = pw(setup_dir, env, "setup", "--non-interactive", ok=False)
    assert again.returncode != 0
    assert "exists already" in again.stderr

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    pw(fresh, env, "quickstart", "--non-interactive", "--skip-docker")
    env = {**env, "PYTHONPATH": os.pathsep.join([str(fresh), env.get("PYTHONPATH", "")])}
    ran = subprocess.run(
        [sys.executable, "run_example.py"], cwd=fresh, env=env, capture_output=True, text=True,
        timeout=90, check=True,
    )  # fmt: skip
    assert "'status': 'completed'" in ran.stdout
    started = pw(fresh, env, "--json", "workflows", "run", "send_notification",
                 "--arg", "user_id=u1", "--arg", "message=hi")  # fmt: skip
    last = json.loads(started.stdout.splitlines()[-1])
    assert last["run"]["result"] == {"to": "u1@example.com", "sent": True}
    assert (fresh / "pyworkflow.db").exists()  # the config file's storage


def test_logs_filter_transient_runs_and_the_runtime(
    project: tuple[Path, dict[str, str], str],
) -> None:
    cwd, env, url = project
    done = pw(cwd, env, "--runtime", "local", "-v", "-m", "spwf", "--storage", url,
              "workflows", "run", "sp_sum", "--arg", "a=2", "--arg", "b=5")  # fmt: skip
    run_id = done.stdout.split()[1]
    assert "DEBUG" in done.stderr  # -v: the --log-level debug of their docs
    filtered = as_json(pw(cwd, env, "--storage", url, "--json", "runs", "logs", run_id,
                          "--filter", "STEP_COMPLETED"))  # fmt: skip
    assert [e["type"] for e in filtered["events"]] == ["step_completed"]
    table = pw(cwd, env, "--storage", url, "runs", "logs", run_id, "--filter", "workflow").stdout
    assert "workflow_started" in table
    assert "workflow_completed" in table
    assert "step_" not in table
    # --no-durable: run here, print the result, store nothing.
    transient = pw(cwd, env, "-m", "spwf", "--storage", url, "--json", "workflows", "run",
                   "sp_sum", "--input", '{"a": 1, "b": 1}', "--no-durable")  # fmt: skip
    assert as_json(transient) == {"result": 2}
    listed = as_json(pw(cwd, env, "--storage", url, "--json", "runs", "list"))
    assert [r["run_id"] for r in listed["runs"]] == [run_id]
    refused = pw(cwd, env, "-m", "spwf", "--storage", url, "workflows", "run", "sp_sum",
                 "--arg", "a=1", "--arg", "b=1", "--no-durable", "--no-wait", ok=False)  # fmt: skip
    assert refused.returncode == 2
    assert "need a durable run" in refused.stderr
    # Celery-only worker options on a local worker: a usage error naming the option.
    local = pw(cwd, env, "-m", "spwf", "--storage", url, "--runtime", "local",
               "worker", "run", "--autoscale", "4,1", ok=False)  # fmt: skip
    assert local.returncode == 2
    assert "--autoscale applies to a Celery worker" in local.stderr
    bad = pw(cwd, env, "worker", "run", "--autoscale", "four", ok=False)
    assert "is not MIN,MAX" in bad.stderr


def test_setup_check(project: tuple[Path, dict[str, str], str]) -> None:
    cwd, env, _ = project
    (cwd / "pyworkflow.config.yaml").write_text("module: spwf\nstorage: sqlite:///sp.db\n")
    fine = pw(cwd, env, "setup", "--check")
    assert "modules    ok (spwf: 3 workflows)" in fine.stdout
    assert "not created yet" in fine.stdout  # looking creates nothing
    assert not (cwd / "sp.db").exists()
    (cwd / "pyworkflow.config.yaml").write_text(
        "module: nosuchmodule\nruntime: celery\ncelery:\n  broker: redis://127.0.0.1:1/0\n"
    )
    bad = pw(cwd, env, "setup", "--check", ok=False)
    assert bad.returncode == 1
    assert "modules    FAILED: cannot import workflow module 'nosuchmodule'" in bad.stdout
    assert "broker     FAILED: redis://127.0.0.1:1/0 does not answer" in bad.stdout


def test_storage_as_their_backend_and_path(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path)
    made = pw(tmp_path, env, "--storage", "file", "--storage-path", "wd", "db", "upgrade")
    assert "sqlite:///wd/pyworkflow.db" in made.stdout
    assert (tmp_path / "wd" / "pyworkflow.db").exists()
    listed = pw(
        tmp_path, env, "--storage", "file", "--storage-path", "wd", "--json", "runs", "list"
    )
    assert as_json(listed) == {"runs": [], "next_before": None}
    alone = pw(tmp_path, env, "--storage-path", "wd", "runs", "list", ok=False)
    assert "--storage-path goes with --storage file" in alone.stderr
