"""``pyworkflow dashboard``: its refusals, before anything is served."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pyworkflow.cli import main


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
