"""`pyworkflow schedules ...` and `runs list --schedule`, as a user types them (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from inprocess_cli import InProcessCli

HERE = Path(__file__).parent


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InProcessCli:
    monkeypatch.chdir(HERE)  # --module schedule_flows imports from here
    return InProcessCli(tmp_path / "sched.db")


def test_a_schedule_from_creation_to_deletion(cli: InProcessCli) -> None:
    created = cli.json(
        "schedules", "create", "cli_sched_report", "--cron", "0 9 * * 1-5",
        "--timezone", "Europe/Prague", "--id", "reports", "--overlap", "buffer_one",
        "--args-json", '{"region": "us"}', "-m", "schedule_flows",
    )  # fmt: skip
    assert created["schedule_id"] == "reports"
    assert created["status"] == "active"
    assert created["describes"] == "cron '0 9 * * 1-5' (Europe/Prague)"
    assert created["overlap_policy"] == "buffer_one"
    assert created["next_run_at"] is not None
    listed = cli.json("schedules", "list")["schedules"]
    assert [s["schedule_id"] for s in listed] == ["reports"]
    assert cli.json("schedules", "pause", "reports")["status"] == "paused"
    assert cli.json("schedules", "pause", "reports")["next_run_at"] is None
    assert cli.json("schedules", "resume", "reports")["status"] == "active"
    backfilled = cli.json(
        "schedules", "backfill", "reports", "--start", "2026-01-05T00:00:00",
        "--end", "2026-01-11T00:00:00", "-m", "schedule_flows",
    )  # fmt: skip
    assert len(backfilled["result"]) == 5  # Monday to Friday at 09:00 Prague
    assert backfilled["schedule"]["total_runs"] == 5
    updated = cli.json("schedules", "update", "reports", "--interval", "1h")
    assert updated["describes"] == "every 1h"
    triggered = cli.json("schedules", "trigger", "reports", "-m", "schedule_flows")
    run_id = triggered["result"]
    assert triggered["schedule"]["total_runs"] == 6
    shown = cli.json("runs", "show", run_id)
    assert json.dumps(shown).count('"schedule_id": "reports"') >= 1
    people = cli("runs", "show", run_id)
    assert "schedule" in people.stdout
    assert "reports" in people.stdout
    by_schedule = cli.json("runs", "list", "--schedule", "reports")["runs"]
    assert next(r["run_id"] for r in by_schedule) == run_id  # newest first
    assert len(by_schedule) == 6
    assert cli.json("runs", "list", "--schedule", "other")["runs"] == []
    table = cli("schedules", "list")
    assert table.exit_code == 0
    assert "reports" in table.stdout
    assert "every 1h" in table.stdout
    shown_for_people = cli("schedules", "show", "reports")
    assert "Runs started" in shown_for_people.stdout
    assert cli.json("schedules", "delete", "reports")["status"] == "deleted"
    assert cli.json("schedules", "list")["schedules"] == []
    assert [
        s["schedule_id"] for s in cli.json("schedules", "list", "--status", "deleted")["schedules"]
    ] == ["reports"]


def test_bad_input_exits_2_naming_it_and_stores_nothing(cli: InProcessCli) -> None:
    bad = cli(
        "schedules", "create", "cli_sched_report", "--cron", "0 25 * * *", "-m", "schedule_flows"
    )
    assert bad.exit_code == 2
    assert "cron '0 25 * * *'" in bad.stderr
    zone = cli(
        "schedules", "create", "cli_sched_report", "--cron", "0 9 * * *",
        "--timezone", "Mars/Olympus", "-m", "schedule_flows",
    )  # fmt: skip
    assert zone.exit_code == 2
    assert "timezone 'Mars/Olympus'" in zone.stderr
    cli("schedules", "create", "cli_sched_report", "--interval", "5m", "--id", "ok",
        "-m", "schedule_flows")  # fmt: skip
    assert [s["schedule_id"] for s in cli.json("schedules", "list")["schedules"]] == ["ok"]
    missing = cli("schedules", "show", "nope")
    assert missing.exit_code == 2
    assert "nope" in missing.stderr
    assert cli("schedules", "pause", "nope").exit_code == 2


def test_the_pyworkflow_docs_spellings(cli: InProcessCli) -> None:
    created = cli.json(
        "schedules", "create", "cli_sched_report", "--interval", "5m",
        "--schedule-id", "my_custom_id", "-m", "schedule_flows",
    )  # fmt: skip
    assert created["schedule_id"] == "my_custom_id"
    assert cli.json("schedules", "delete", "my_custom_id", "--force")["status"] == "deleted"
