"""`pyworkflow runs export` as a user runs it: real processes, a real SQLite file.

The database is the one tests/cli/test_runs_cli.py reads (its seed script and workflow module):
three runs executed to their end and three stored as a client stores them, three days old, two
hours old and new. Exported files must load with ``load_history``, hold the stored log exactly,
and replay with ``pyworkflow replay --file``.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest
from inprocess_cli import InProcessCli
from test_runs_cli import NEWEST_FIRST, Cli, one_line, seed_runs

from pyworkflow.testing import load_history
from workers import cli, on_sqlite

pytestmark = pytest.mark.slow  # the CLI in processes of its own


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, dict[str, str]]:
    """The runs of test_runs_cli's seed script, and their ids by name."""
    return seed_runs(tmp_path_factory.mktemp("export"))


@pytest.fixture
def pyworkflow(seeded: tuple[Cli, dict[str, str]]) -> Cli:
    return seeded[0]


@pytest.fixture
def ids(seeded: tuple[Cli, dict[str, str]]) -> dict[str, str]:
    return seeded[1]


def file_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_every_run_exported_loads_and_replays(
    pyworkflow: Cli, ids: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "histories" / "v1"  # its parent is missing too
    document = pyworkflow.json("runs", "export", "--out", str(out))
    directory = out.resolve()
    newest_first = [ids[name] for name in NEWEST_FIRST]
    assert document == {
        "exported": 6,
        "directory": str(directory),
        "files": [str(directory / f"{run_id}.json") for run_id in newest_first],
    }
    assert file_names(out) == sorted(f"{run_id}.json" for run_id in newest_first)
    workflows = {"greeted": "greet", "doubled": "double", "doomed": "doomed"}
    for name, run_id in ids.items():
        history = load_history(out / f"{run_id}.json")
        assert history.run_id == run_id
        assert history.workflow_name == workflows.get(name, "greet")
        stored = on_sqlite(pyworkflow.db, lambda storage, r=run_id: storage.load_events(r))
        assert history.events == tuple(stored)

    replayed = subprocess.run(
        cli("replay", "-m", "runscli", *(arg for f in document["files"] for arg in ("--file", f))),
        cwd=pyworkflow.cwd,
        env=pyworkflow.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout.strip().splitlines()[-1] == (
        "replayed 6 histories: 6 ok, 0 diverged, 0 could not be replayed"
    )

    # Again into the same directory: the files are replaced, none is added.
    again = pyworkflow("runs", "export", "--out", str(out), "--status", "failed")
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"1 run exported to {out}\n"
    assert again.stderr == ""  # no progress bar off a terminal
    assert len(file_names(out)) == 6


SELECTIONS = [
    (["--status", "failed"], ["doomed"]),
    (["--workflow", "greet", "--since", "1d"], ["fresh", "greeted", "hours_old"]),
    (["--until", "1h"], ["hours_old", "days_old"]),
    (["--limit", "2"], ["fresh", "doomed"]),
    (["--status", "pending", "--limit", "2"], ["fresh", "hours_old"]),
    (["--status", "cancelled"], []),
    (["--run-id", "{hours_old}", "--run-id", "{greeted}", "--run-id", "{hours_old}"],
     ["hours_old", "greeted"]),
]  # fmt: skip


def test_filters_select_the_runs_written(
    pyworkflow: Cli, ids: dict[str, str], tmp_path: Path
) -> None:
    commands = [
        [
            "runs",
            "export",
            "--out",
            str(tmp_path / str(n)),
            *(a.format(**ids) for a in args),
            "--json",
        ]
        for n, (args, _) in enumerate(SELECTIONS)
    ]
    results = pyworkflow.many(*commands)
    for n, ((args, expected), result) in enumerate(zip(SELECTIONS, results, strict=True)):
        assert result.returncode == 0, (args, result.stderr)
        files = [Path(f).name for f in json.loads(result.stdout)["files"]]
        assert files == [f"{ids[name]}.json" for name in expected], args
        assert file_names(tmp_path / str(n)) == sorted(files), args


def test_paging_through_many_pages(
    pyworkflow: Cli, ids: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two runs a query: the read model's keyset paging must walk every page once.
    monkeypatch.setattr("pyworkflow.inspect.runs._SCAN_BATCH", 2)
    here = InProcessCli(pyworkflow.db)
    for args, expected in [
        ([], NEWEST_FIRST),
        (["--limit", "5"], NEWEST_FIRST[:5]),
        (["--since", "1d"], NEWEST_FIRST[:5]),
    ]:
        out = tmp_path / "-".join(["all", *args])
        document = here.json("runs", "export", "--out", str(out), *args)
        assert [Path(f).stem for f in document["files"]] == [ids[n] for n in expected], args


def test_a_progress_bar_on_a_terminal(pyworkflow: Cli, tmp_path: Path) -> None:
    terminal, stderr = pty.openpty()
    try:
        result = subprocess.run(
            cli(
                "runs", "export", "--out", str(tmp_path), "--storage", f"sqlite:///{pyworkflow.db}"
            ),
            cwd=pyworkflow.cwd,
            env=pyworkflow.env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(stderr)
    shown = b""
    try:
        while chunk := os.read(terminal, 4096):
            shown += chunk
    except OSError:  # EIO: every writer of the terminal is gone
        pass
    finally:
        os.close(terminal)
    assert result.returncode == 0
    assert result.stdout == f"6 runs exported to {tmp_path}\n"
    bar = shown.decode()
    assert "exporting" in bar
    assert "100%" in bar


def test_user_mistakes_are_one_line_and_write_nothing(
    pyworkflow: Cli, ids: dict[str, str], tmp_path: Path
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    out = str(tmp_path / "out")
    mistakes = [
        (["--out", str(a_file)], "notes.txt"),
        (["--out", out, "--run-id", ids["greeted"], "--run-id", "run_nope"], "'run_nope'"),
        (["--out", out, "--since", "5 parsecs"], "'5 parsecs'"),
        (["--out", out, "--until", "yesterday"], "'yesterday'"),
        (["--out", out, "--run-id", ids["greeted"], "--status", "failed"], "--run-id"),
    ]
    results = pyworkflow.many(*(["runs", "export", *args] for args, _ in mistakes))
    for (args, named), result in zip(mistakes, results, strict=True):
        assert result.returncode == 2, (args, result.stderr)
        line = one_line(result.stderr)
        assert line.startswith("pyworkflow: error: "), args
        assert named in line, (args, line)
        assert result.stdout == "", args
    assert file_names(tmp_path) == ["notes.txt"]
    assert a_file.read_text() == "mine\n"


def test_a_missing_database_creates_no_directory(pyworkflow: Cli, tmp_path: Path) -> None:
    result = subprocess.run(
        cli("runs", "export", "--out", "out", "--storage", "sqlite:///typo.db"),
        cwd=tmp_path,
        env=pyworkflow.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "typo.db" in one_line(result.stderr)
    assert list(tmp_path.iterdir()) == []
