"""Error texts that point the way a shell user can go.

A duration typed on the command line is a shell word: the hint offers units (30s, 1h30m), not
a timedelta. A module that exists but fails to import (a dependency missing, an error at import)
is reported as that failure, where it happened, not as a module missing from sys.path; a
module that really is missing still says where modules are looked for.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from inprocess_cli import InProcessCli


def one_line_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pyworkflow: error: "), result.stderr
    return lines[0]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InProcessCli:
    monkeypatch.chdir(tmp_path)
    return InProcessCli(tmp_path / "app.db")


@pytest.mark.parametrize("typed", ["5 parsecs", "30", "-1d"])
@pytest.mark.parametrize(
    "command", [["runs", "prune", "--older-than"], ["worker", "run", "--retention"]]
)
def test_a_bad_duration_offers_what_a_shell_user_can_type(
    cli: InProcessCli, command: list[str], typed: str
) -> None:
    line = one_line_error(cli(*command, typed))
    assert f"{command[-1]} {typed!r}" in line
    assert "30s" in line
    assert "1h30m" in line
    assert "timedelta" not in line
    assert "a number of seconds" not in line  # the shell's "30" is refused: a unit is needed


def test_a_module_whose_dependency_is_missing_says_so(cli: InProcessCli, tmp_path: Path) -> None:
    (tmp_path / "msgflows_needs_dep.py").write_text(
        "import json\nimport msgflows_not_installed_dep\n"
    )
    line = one_line_error(cli("workflows", "list", "-m", "msgflows_needs_dep"))
    assert "'msgflows_needs_dep'" in line
    assert "msgflows_not_installed_dep" in line
    assert "msgflows_needs_dep.py, line 2" in line
    assert "install" in line
    assert "sys.path" not in line


def test_a_module_that_fails_at_import_says_where(cli: InProcessCli, tmp_path: Path) -> None:
    (tmp_path / "msgflows_raises.py").write_text(
        "SETTINGS = {}\n\n\nTIMEOUT = SETTINGS['timeout']\n"
    )
    line = one_line_error(cli("workflows", "list", "-m", "msgflows_raises"))
    assert "'msgflows_raises'" in line
    assert "KeyError: 'timeout'" in line
    assert "msgflows_raises.py, line 4" in line
    assert "sys.path" not in line


def test_a_missing_module_says_where_modules_are_looked_for(cli: InProcessCli) -> None:
    line = one_line_error(cli("workflows", "list", "-m", "msgflows_nowhere"))
    assert "'msgflows_nowhere'" in line
    assert "sys.path" in line
