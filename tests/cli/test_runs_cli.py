"""`pyworkflow runs list|show|history|cancel|resume` as a user runs them: real processes, a real
SQLite file.

Most tests only read one database, seeded once per module by a script in its own process
(so this process's pyworkflow configuration is untouched): three runs executed to their end and
three stored as a client stores them, one created three days ago, one two hours ago and one now,
so that time filters have something to tell apart. Tests that change runs get a database of
their own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pyworkflow.events import EventType, RunStatus
from workers import cli, on_sqlite, read_run, subprocess_env

pytestmark = pytest.mark.slow  # the CLI in processes of its own

WORKFLOWS = """
from pyworkflow import FatalError, sleep, step, workflow

calls = {"flaky": 0}


@step()
async def runscli_greet(name: str) -> str:
    return f"hello {name}"


@step(max_retries=2, retry_delay="10ms")
async def runscli_flaky(n: int) -> int:
    calls["flaky"] += 1
    if calls["flaky"] == 1:
        raise ValueError("first try [fails]")
    return n * 2


@step(max_retries=0)
async def runscli_refuse(reason: str) -> None:
    raise FatalError(reason)


@workflow()
async def greet(name: str) -> str:
    await sleep(0.01)
    return await runscli_greet(name)


@workflow()
async def double(n: int) -> dict:
    return {"doubled": await runscli_flaky(n)}


@workflow()
async def doomed(reason: str) -> None:
    await runscli_refuse(reason)
"""

SEED = """
import asyncio
import json
import sys
import time
import uuid

import pyworkflow
from pyworkflow import WorkflowFailedError
from pyworkflow._engine.event_kinds import EVENT_FORMAT
from pyworkflow.serialization import Codec
from pyworkflow.storage import NewRun, SQLiteStorage

import runscli


async def stored(storage, workflow, age, *args):
    encoded = Codec().encode({"args": list(args), "kwargs": {}})
    new = NewRun(
        run_id=f"run_{uuid.uuid4().hex}",
        workflow_name=workflow,
        args=encoded,
        started_payload={"v": EVENT_FORMAT, "workflow": workflow, "args": encoded,
                         "idempotency_key": None},
        now=time.time() - age,
    )
    record, _ = await storage.create_run(new)
    return record.run_id


async def main(db):
    ids = {}
    pyworkflow.configure(storage=f"sqlite:///{db}")
    ids["greeted"] = await pyworkflow.start(runscli.greet, "ada", idempotency_key="greet-ada")
    assert await pyworkflow.get_workflow_result(ids["greeted"]) == "hello ada"
    ids["doubled"] = await pyworkflow.start(runscli.double, 21)
    assert await pyworkflow.get_workflow_result(ids["doubled"]) == {"doubled": 42}
    ids["doomed"] = await pyworkflow.start(runscli.doomed, "out of stock")
    try:
        await pyworkflow.get_workflow_result(ids["doomed"])
    except WorkflowFailedError:
        pass
    await pyworkflow.shutdown()
    storage = SQLiteStorage(db)
    await storage.open()
    # Stored after shutdown: a live runtime would claim and run them, as they are due.
    ids["days_old"] = await stored(storage, "greet", 3 * 86400, "old")
    ids["hours_old"] = await stored(storage, "greet", 2 * 3600, "older")
    ids["fresh"] = await stored(storage, "greet", 0, "new")
    await storage.close()
    print(json.dumps(ids))


asyncio.run(main(sys.argv[1]))
"""


class Cli:
    """Runs `pyworkflow ...` in ``cwd`` with ``env`` against the database ``db``."""

    def __init__(self, cwd: Path, env: dict[str, str], db: Path) -> None:
        self.cwd, self.env, self.db = cwd, env, db

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli(*args, "--storage", f"sqlite:///{self.db}"),
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def many(self, *commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
        """Run the commands at the same time (each is a process start of ~0.5 s)."""
        procs = [
            subprocess.Popen(
                cli(*args, "--storage", f"sqlite:///{self.db}"),
                cwd=self.cwd,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args in commands
        ]
        done = []
        for args, proc in zip(commands, procs, strict=True):
            out, err = proc.communicate(timeout=60)
            done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
        return done

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def project(path: Path) -> dict[str, str]:
    (path / "runscli.py").write_text(textwrap.dedent(WORKFLOWS))
    return subprocess_env(path)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, dict[str, str]]:
    """A database with the module docstring's six runs, and their ids by name."""
    return seed_runs(tmp_path_factory.mktemp("runs"))


def seed_runs(path: Path) -> tuple[Cli, dict[str, str]]:
    """Write the project and its seeded database in ``path``: the CLI on it, the run ids."""
    env = project(path)
    (path / "seed.py").write_text(textwrap.dedent(SEED))
    db = path / "runs.db"
    seed = subprocess.run(
        [sys.executable, "seed.py", str(db)],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert seed.returncode == 0, seed.stderr
    return Cli(path, env, db), json.loads(seed.stdout)


@pytest.fixture
def pyworkflow(seeded: tuple[Cli, dict[str, str]]) -> Cli:
    return seeded[0]


@pytest.fixture
def ids(seeded: tuple[Cli, dict[str, str]]) -> dict[str, str]:
    return seeded[1]


@pytest.fixture
def own(seeded: tuple[Cli, dict[str, str]], tmp_path: Path) -> Cli:
    """A copy of the seeded database, for tests that change runs."""
    shared = seeded[0]
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{shared.db}{suffix}").exists():
            shutil.copy(f"{shared.db}{suffix}", f"{tmp_path / 'own.db'}{suffix}")
    return Cli(shared.cwd, shared.env, tmp_path / "own.db")


def listed(pyworkflow: Cli, *args: str) -> list[str]:
    page = pyworkflow.json("runs", "list", *args)
    return [run["run_id"] for run in page["runs"]]


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


NEWEST_FIRST = ["fresh", "doomed", "doubled", "greeted", "hours_old", "days_old"]


def test_list_shows_runs_newest_first(pyworkflow: Cli, ids: dict[str, str]) -> None:
    page = pyworkflow.json("runs", "list")
    assert [r["run_id"] for r in page["runs"]] == [ids[name] for name in NEWEST_FIRST]
    assert page["next_before"] is None
    by_id = {r["run_id"]: r for r in page["runs"]}
    greeted = by_id[ids["greeted"]]
    assert greeted["workflow"] == "greet"
    assert greeted["status"] == "completed"
    assert greeted["idempotency_key"] == "greet-ada"
    assert datetime.fromisoformat(greeted["completed_at"]) >= datetime.fromisoformat(
        greeted["created_at"]
    )
    assert by_id[ids["doomed"]]["status"] == "failed"
    assert by_id[ids["fresh"]]["status"] == "pending"
    assert by_id[ids["fresh"]]["completed_at"] is None

    table = pyworkflow("runs", "list", "--limit", "4")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line.strip()}
    assert rows[ids["doomed"]][1:3] == ["doomed", "failed"]
    assert rows[ids["greeted"]][1:3] == ["greet", "completed"]
    assert ids["hours_old"] not in rows
    assert lines[-1] == f"more runs: add --before {ids['greeted']}"


def test_keyset_paging_walks_every_run_once(pyworkflow: Cli, ids: dict[str, str]) -> None:
    seen: list[str] = []
    before: list[str] = []
    while True:
        page = pyworkflow.json("runs", "list", "--limit", "4", *before)
        seen += [r["run_id"] for r in page["runs"]]
        if page["next_before"] is None:
            break
        assert page["next_before"] == seen[-1]
        before = ["--before", page["next_before"]]
    assert seen == [ids[name] for name in NEWEST_FIRST]


FILTERS = [
    (["--status", "failed"], ["doomed"]),
    (["--status", "completed", "--status", "failed"], ["doomed", "doubled", "greeted"]),
    (["--workflow", "greet", "--status", "pending"], ["fresh", "hours_old", "days_old"]),
    (["--since", "1d"], ["fresh", "doomed", "doubled", "greeted", "hours_old"]),
    (["--until", "1h"], ["hours_old", "days_old"]),
    (["--since", "1d", "--until", "1h30m"], ["hours_old"]),
]


def test_filters(pyworkflow: Cli, ids: dict[str, str]) -> None:
    results = pyworkflow.many(*(["runs", "list", *f, "--json"] for f, _ in FILTERS))
    for (filters, expected), result in zip(FILTERS, results, strict=True):
        assert result.returncode == 0, (filters, result.stderr)
        found = [run["run_id"] for run in json.loads(result.stdout)["runs"]]
        assert found == [ids[name] for name in expected], filters


def test_time_filters_take_iso_datetimes(pyworkflow: Cli, ids: dict[str, str]) -> None:
    now = datetime.now(UTC)
    since = (now - timedelta(days=1)).isoformat()
    until = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert listed(pyworkflow, "--since", since, "--until", until) == [ids["hours_old"]]


def test_show_a_completed_run_with_a_retried_step(pyworkflow: Cli, ids: dict[str, str]) -> None:
    run = pyworkflow.json("runs", "show", ids["doubled"])
    assert run["run_id"] == ids["doubled"]
    assert run["status"] == "completed"
    assert run["args"] == {"args": [21], "kwargs": {}}
    assert run["result"] == {"doubled": 42}
    assert run["error"] is None
    timeline = run["timeline"]
    assert [e["type"] for e in timeline] == [
        "workflow_started",
        "step_started",
        "step_retrying",
        "step_started",
        "step_completed",
        "workflow_completed",
    ]
    assert [e["seq"] for e in timeline] == list(range(1, 7))
    assert timeline[0]["since_start"] == 0
    assert all(e["since_previous"] >= 0 for e in timeline)
    starts = [e["since_start"] for e in timeline]
    assert starts == sorted(starts)
    assert timeline[-1]["since_start"] >= 0.01  # the retry delay
    assert "first try [fails]" in timeline[2]["summary"]
    attempts = [(s["step_id"], s["attempt"], s["outcome"]) for s in run["steps"]]
    assert attempts == [("runscli_flaky#1", 1, "retried"), ("runscli_flaky#1", 2, "completed")]
    assert run["steps"][0]["error"]["type"] == "ValueError"
    assert run["steps"][1]["duration"] >= 0

    shown = pyworkflow("runs", "show", ids["doubled"])
    assert shown.returncode == 0, shown.stderr
    for text in ("completed", "double(21)", '"doubled": 42', "Timeline", "step_retrying"):
        assert text in shown.stdout
    assert "ValueError: first try [fails]" in shown.stdout  # brackets printed as they are


def test_show_a_failed_run_with_its_traceback(pyworkflow: Cli, ids: dict[str, str]) -> None:
    shown = pyworkflow("runs", "show", ids["doomed"])
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "pyworkflow.exceptions.FatalError: out of stock" in out
    assert "Traceback (most recent call last)" in out
    assert "raise FatalError(reason)" in out  # the line of user code that failed
    assert "runscli_refuse#1" in out
    run = pyworkflow.json("runs", "show", ids["doomed"])
    assert run["status"] == "failed"
    assert run["error"]["type"] == "pyworkflow.exceptions.FatalError"
    assert run["error"]["message"] == "out of stock"
    assert "raise FatalError(reason)" in run["error"]["traceback"]
    assert run["result"] is None
    assert run["steps"][0]["outcome"] == "failed"


def test_history_prints_the_log_as_stored(pyworkflow: Cli, ids: dict[str, str]) -> None:
    log = pyworkflow.json("runs", "history", ids["greeted"])
    assert log["run_id"] == ids["greeted"]
    events = log["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events] == [
        "workflow_started",
        "sleep_started",
        "sleep_completed",
        "step_started",
        "step_completed",
        "workflow_completed",
    ]
    assert events[0]["data"]["idempotency_key"] == "greet-ada"
    assert events[0]["data"]["args"] == {"args": ["ada"], "kwargs": {}}
    assert events[4]["data"]["result"] == "hello ada"
    assert events[1]["data"]["wake_at"] > 0
    table = pyworkflow("runs", "history", ids["greeted"])
    assert table.returncode == 0, table.stderr
    assert '"result":"hello ada"' in table.stdout


def test_cancel_a_waiting_run_and_an_ended_one(own: Cli, ids: dict[str, str]) -> None:
    waiting = ids["fresh"]
    cancelled = own.json("runs", "cancel", waiting, "--reason", "not needed")
    assert cancelled == {"run_id": waiting, "cancel_requested": True, "status": "pending"}
    record = read_run(own.db, waiting)
    assert record.cancel_requested
    assert record.cancel_reason == "not needed"

    ended = ids["greeted"]
    again = own("runs", "cancel", ended)
    assert again.returncode == 0, again.stderr
    assert "already ended (completed)" in again.stdout
    assert not read_run(own.db, ended).cancel_requested


def test_resume_a_failed_run(own: Cli, ids: dict[str, str]) -> None:
    run_id = ids["doomed"]
    resumed = own("runs", "resume", run_id, "--module", "runscli")
    assert resumed.returncode == 0, resumed.stderr
    assert f"run {run_id} resumed" in resumed.stdout
    assert read_run(own.db, run_id).status is RunStatus.PENDING
    log = on_sqlite(own.db, lambda storage: storage.load_events(run_id))
    assert log[-1].type is EventType.WORKFLOW_RESUMED
    # Not failed any more: nothing to resume, said plainly.
    again = own.json("runs", "resume", run_id, "--module", "runscli")
    assert again == {"run_id": run_id, "resumed": False, "status": "pending"}


MISTAKES = [
    (["runs", "show", "run_nope"], "'run_nope'"),
    (["runs", "cancel", "run_nope", "--reason", "x"], "'run_nope'"),
    (["runs", "list", "--before", "run_nope"], "--before"),
    (["runs", "list", "--since", "5 parsecs"], "'5 parsecs'"),
    (["runs", "list", "--until", "yesterday"], "'yesterday'"),
    (["runs", "resume", "{doubled}"], "'double'"),  # its workflow is not importable here
    (["runs", "resume", "{greeted}", "-m", "runscli"], "only a failed run"),
]


def test_user_mistakes_are_one_line_and_exit_2(pyworkflow: Cli, ids: dict[str, str]) -> None:
    commands = [[arg.format(**ids) for arg in args] for args, _ in MISTAKES]
    for (args, named), result in zip(MISTAKES, pyworkflow.many(*commands), strict=True):
        assert result.returncode == 2, (args, result.stderr)
        line = one_line(result.stderr)
        assert line.startswith("pyworkflow: error: "), args
        assert named in line, (args, line)
        assert result.stdout == "", args


@pytest.mark.parametrize(
    ("url", "named"),
    [("sqlite:///{tmp}/typo.db", "typo.db"), ("postgres://app:hunter2@db/runs", "postgres://")],
    ids=["missing-file", "bad-url"],
)
def test_a_wrong_storage_is_one_line_and_creates_nothing(
    tmp_path: Path, url: str, named: str
) -> None:
    url = url.format(tmp=tmp_path)
    result = subprocess.run(
        cli("runs", "list", "--storage", url),
        cwd=tmp_path,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert named in line
    assert "hunter2" not in line
    assert list(tmp_path.iterdir()) == []
