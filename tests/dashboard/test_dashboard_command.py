"""``pyworkflow dashboard``: its refusals before anything is served, and what ``--module`` adds."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from pyworkflow.cli import main
from workers import WorkerProcesses

FLOWS = Path(__file__).with_name("dash_flows.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_short_write_token_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["dashboard", "--storage", f"sqlite:///{tmp_path / 'x.db'}", "--write-token", "abc"]
    )
    assert result.exit_code == 2
    assert "--write-token is shorter than 8 characters" in result.output


def test_the_token_can_come_from_the_environment(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["dashboard", "--storage", f"sqlite:///{tmp_path / 'x.db'}"],
        env={"PYWORKFLOW_DASHBOARD_TOKEN": "short"},
    )
    assert result.exit_code == 2
    assert "--write-token is shorter" in result.output


def test_a_missing_database_is_an_error_not_an_empty_dashboard(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["dashboard", "--storage", f"sqlite:///{tmp_path / 'no.db'}"])
    assert result.exit_code == 2
    assert "no database at" in result.output
    assert not (tmp_path / "no.db").exists()


def test_workflows_found_through_module_are_listed_without_runs(
    tmp_path: Path, worker_processes: WorkerProcesses
) -> None:
    # A real `pyworkflow dashboard --module` process over a database that has no run at all:
    # the Workflows page and its API list the module's workflows all the same.
    (tmp_path / "dash_flows.py").write_text(FLOWS.read_text())
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade = worker_processes.start("db", "upgrade", "--storage", url, log=tmp_path / "db.log")
    assert upgrade.wait() == 0
    port = free_port()
    worker_processes.start(
        "dashboard", "--module", "dash_flows", "--storage", url, "--port", str(port),
        log=tmp_path / "dashboard.log",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/workflows", timeout=2) as answer:
                found = json.load(answer)["workflows"]
            break
        except OSError:
            assert time.monotonic() < deadline, (tmp_path / "dashboard.log").read_text()
            time.sleep(0.1)
    listed = {w["workflow"]: w for w in found}
    assert {"dash_greet", "dash_fragile", "dash_approval", "dash_nap", "dash_tagged"} <= set(listed)
    assert all(w["registered"] and w["total"] == 0 for w in listed.values())
    with urllib.request.urlopen(f"{base}/workflows", timeout=5) as answer:
        page = answer.read().decode()
    assert 'href="/runs?workflow=dash_nap"' in page
    with urllib.request.urlopen(f"{base}/runs", timeout=5) as answer:
        assert '<option value="dash_tagged">' in answer.read().decode()  # the filter's menu
