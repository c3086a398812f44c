"""`pyworkflow workflows list|info|run` as a user runs them: real processes, a real SQLite file."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from pyworkflow.events import RunStatus
from workers import cli, read_run

pytestmark = pytest.mark.slow  # the CLI in processes of its own

WORKFLOWS = """
import asyncio
import os

from pyworkflow import FatalError, sleep, step, workflow

HOLD = os.environ.get("WFCLI_HOLD", "")


@step()
async def wfcli_shout(text: str) -> str:
    while HOLD and os.path.exists(HOLD):  # lets a test look while the run is in this step
        await asyncio.sleep(0.02)
    return text.upper()


@step(max_retries=0)
async def wfcli_refuse(reason: str) -> None:
    raise FatalError(reason)


@workflow(max_duration="1h")
async def greet(name: str, punctuation: str = "!") -> str:
    \"\"\"Greet someone, loudly.\"\"\"
    await sleep(0.05)
    return await wfcli_shout(f"hello {name}") + punctuation


@workflow()
async def echo(count: int, tags: list, label: str, extra: dict | None = None) -> dict:
    return {"count": count, "tags": tags, "label": label, "extra": extra}


@workflow()
async def doomed(reason: str) -> None:
    await wfcli_refuse(reason)
"""

FOLLOWED = [
    "workflow_started",
    "sleep_started",
    "sleep_completed",
    "step_started",
    "step_completed",
    "workflow_completed",
]


class Cli:
    """Runs `pyworkflow ...` in ``cwd`` with ``env`` (tests may change ``env`` first)."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli(*args),
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def many(self, *commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
        """Run the commands at the same time (each is a process start of ~0.5 s)."""
        procs = [self.start(*args) for args in commands]
        done = []
        for args, proc in zip(commands, procs, strict=True):
            out, err = proc.communicate(timeout=60)
            done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
        return done

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            cli(*args),
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # As in a terminal: a test run started in the background (bash `&`) would pass on
            # an ignored SIGINT, and Python then keeps ignoring Ctrl-C, as it should.
            preexec_fn=_default_sigint,
        )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "wf.db"


@pytest.fixture
def pyworkflow(tmp_path: Path, worker_env: dict[str, str], db: Path) -> Cli:
    (tmp_path / "wfcli.py").write_text(textwrap.dedent(WORKFLOWS))
    worker_env["PYWORKFLOW_STORAGE"] = f"sqlite:///{db}"
    worker_env["PYWORKFLOW_MODULES"] = "wfcli"
    return Cli(tmp_path, worker_env)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def event_types(stdout: str) -> list[str]:
    """The event column of `workflows run` lines (after the time and the +delta)."""
    return [
        word
        for line in stdout.splitlines()
        for word in line.split()[1:3]
        if word in FOLLOWED or word in ("step_failed", "workflow_failed")
    ]


def test_list_describes_every_workflow(pyworkflow: Cli) -> None:
    listed = pyworkflow("workflows", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    workflows = {w["name"]: w for w in json.loads(listed.stdout)["workflows"]}
    assert sorted(workflows) == ["doomed", "echo", "greet"]
    greet = workflows["greet"]
    assert greet["function"] == "wfcli.greet"
    assert greet["signature"] == "(name: str, punctuation: str = '!') -> str"
    assert greet["max_duration"] == 3600
    assert greet["doc"] == "Greet someone, loudly."
    assert [(p["name"], p["annotation"], p["required"]) for p in greet["parameters"]] == [
        ("name", "str", True),
        ("punctuation", "str", False),
    ]
    assert greet["steps"] == [
        {
            "name": "wfcli_shout",
            "max_retries": 3,
            "retry_delay": "exponential",
            "timeout": None,
            "force_local": False,
        }
    ]
    assert [s["name"] for s in workflows["doomed"]["steps"]] == ["wfcli_refuse"]
    assert workflows["echo"]["steps"] == []

    table = pyworkflow("workflows", "list")
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line for line in table.stdout.splitlines() if line.strip()}
    assert "wfcli_shout" in rows["greet"]
    assert "1h" in rows["greet"]
    assert "wfcli_refuse" in rows["doomed"]


def test_info_shows_one_workflow(pyworkflow: Cli) -> None:
    shown = pyworkflow("workflows", "info", "greet", "--module", "wfcli")
    assert shown.returncode == 0, shown.stderr
    for text in ("greet(name: str, punctuation: str = '!') -> str", "Greet someone", "wfcli_shout"):
        assert text in shown.stdout


def test_run_prints_each_event_as_it_is_logged(pyworkflow: Cli, db: Path, tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    hold.touch()
    pyworkflow.env["WFCLI_HOLD"] = str(hold)
    proc = pyworkflow.start("workflows", "run", "greet", "--arg", "name=ada")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("run run_"), first
        run_id = first.split()[1]
        seen = []
        while not seen or "step_started" not in seen[-1]:
            line = proc.stdout.readline()
            assert line, f"output ended early: {seen}"
            seen.append(line)
        # The step is still running: what was printed came while the run went on.
        assert proc.poll() is None
        assert read_run(db, run_id).status is RunStatus.RUNNING
        hold.unlink()
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    output = "".join(seen) + rest
    assert event_types(output) == FOLLOWED
    # wake_at less the commit's time: 0.050s, less whatever the commit took on a busy machine.
    assert re.search(r"sleep#1 for 0\.0[0-5]\ds, until ", output), output
    assert 'wfcli_shout#1 -> "HELLO ADA"' in output
    assert output.splitlines()[-1].startswith(f"run {run_id} completed in ")
    assert output.splitlines()[-1].endswith('"HELLO ADA!"')
    assert read_run(db, run_id).status is RunStatus.COMPLETED
    assert "Traceback" not in err


def test_run_with_json_prints_json_lines(pyworkflow: Cli) -> None:
    result = pyworkflow("workflows", "run", "greet", "--arg", "name=ada", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    events = [line["event"] for line in lines[:-1]]
    assert [e["type"] for e in events] == FOLLOWED
    assert [e["seq"] for e in events] == list(range(1, len(FOLLOWED) + 1))
    run = lines[-1]["run"]
    assert {e["run_id"] for e in events} == {run["run_id"]}
    assert run["status"] == "completed"
    assert run["result"] == "HELLO ADA!"
    assert run["args"] == {"args": [], "kwargs": {"name": "ada"}}
    assert run["error"] is None
    assert run["completed_at"] >= run["created_at"]


def test_a_failed_run_exits_1_and_names_the_error(pyworkflow: Cli) -> None:
    result = pyworkflow("workflows", "run", "doomed", "--arg", "reason=out of stock")
    assert result.returncode == 1
    assert event_types(result.stdout) == [
        "workflow_started",
        "step_started",
        "step_failed",
        "workflow_failed",
    ]
    last = result.stdout.splitlines()[-1]
    assert "failed" in last
    assert "FatalError: out of stock" in last
    assert "pyworkflow runs show run_" in last
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            [
                "--arg",
                "count=3",
                "--arg",
                'tags=["a", 2]',
                "--arg",
                "label=007",
                "--arg",
                'extra={"k": null}',
            ],
            {"count": 3, "tags": ["a", 2], "label": "007", "extra": {"k": None}},
        ),
        (
            ["--args-json", '[5, ["x"]]', "--arg", "label=42"],
            {"count": 5, "tags": ["x"], "label": "42", "extra": None},
        ),
    ],
    ids=["arg-values-are-json-or-text", "args-json-list-plus-arg"],
)
def test_arguments_reach_the_workflow(
    pyworkflow: Cli, args: list[str], expected: dict[str, object]
) -> None:
    result = pyworkflow("workflows", "run", "echo", *args, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["run"]["result"] == expected


def test_no_wait_stores_the_run_for_a_worker_and_keys_are_idempotent(
    pyworkflow: Cli, db: Path
) -> None:
    started = pyworkflow(
        "workflows",
        "run",
        "greet",
        "--arg",
        "name=bo",
        "--no-wait",
        "--idempotency-key",
        "greet-bo",
    )
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    assert run_id.startswith("run_")
    assert len(started.stdout.splitlines()) == 1
    record = read_run(db, run_id)
    assert record.status is RunStatus.PENDING
    assert record.lease_owner is None  # nobody holds it: the first worker to look takes it
    assert record.idempotency_key == "greet-bo"

    again = pyworkflow(
        "workflows",
        "run",
        "greet",
        "--arg",
        "name=bo",
        "--no-wait",
        "--idempotency-key",
        "greet-bo",
        "--json",
    )
    assert json.loads(again.stdout) == {"run_id": run_id}

    # Following the same key follows (and here drives) the run stored above.
    started_at = time.monotonic()
    followed = pyworkflow(
        "workflows", "run", "greet", "--arg", "name=bo", "--idempotency-key", "greet-bo"
    )
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.splitlines()[0] == f"run {run_id} of greet"
    assert event_types(followed.stdout) == FOLLOWED
    assert time.monotonic() - started_at < 10
    assert read_run(db, run_id).status is RunStatus.COMPLETED


MISTAKES = [
    (["workflows", "run", "greet", "--args-json", "{name: ada}"], "'{name: ada}'"),
    (["workflows", "run", "greet", "--args-json", '"ada"'], "not an object or list"),
    (["workflows", "run", "greet", "--arg", "name"], "NAME=VALUE"),
    (["workflows", "run", "greet", "--arg", "nmae=ada"], "no parameter 'nmae'"),
    (["workflows", "run", "greet"], "missing a required argument: 'name'"),
    (["workflows", "run", "grete", "--arg", "name=a"], "'grete'"),
    (["workflows", "info", "grete"], "'grete'"),
    (["workflows", "list", "--module", "no_such_module_here"], "no_such_module_here"),
    (
        ["workflows", "run", "greet", "--arg", "name=a", "--storage", "mysql://u:pw@h/db"],
        "mysql://",
    ),
]


def test_user_mistakes_are_one_line_and_exit_2(pyworkflow: Cli, db: Path) -> None:
    results = pyworkflow.many(*(args for args, _ in MISTAKES))
    for (args, named), result in zip(MISTAKES, results, strict=True):
        assert result.returncode == 2, (args, result.stderr)
        line = one_line(result.stderr)
        assert line.startswith("pyworkflow: error: "), args
        assert named in line, (args, line)
        assert result.stdout == "", args
    assert not db.exists()  # each was refused before anything was written


def test_without_modules_it_says_how_to_name_them(pyworkflow: Cli) -> None:
    del pyworkflow.env["PYWORKFLOW_MODULES"]
    result = pyworkflow("workflows", "list")
    assert result.returncode == 2
    assert "--module" in one_line(result.stderr)


def test_ctrl_c_stops_following_and_hands_the_run_back(
    pyworkflow: Cli, db: Path, tmp_path: Path
) -> None:
    hold = tmp_path / "hold"
    hold.touch()
    pyworkflow.env["WFCLI_HOLD"] = str(hold)
    proc = pyworkflow.start("workflows", "run", "greet", "--arg", "name=cy")
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().split()[1]
        line = ""
        while "step_started" not in line:
            line = proc.stdout.readline()
            assert line, "output ended before the step started"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "workflow_completed" not in out
    assert f"stopped following run {run_id}" in one_line(err)
    record = read_run(db, run_id)
    assert not record.status.is_terminal
    assert record.lease_owner is None  # handed back: a worker takes it at once
