"""`pyworkflow hooks list|resume`, and hooks in `runs show`, as a user runs them.

The runs were driven by real workflows (familycli_flows) into their states: hooks waiting,
one expired, one received. The CLI runs in this process (tests/cli/conftest.py), except where
the point is a separate process that never imported the workflow.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from familycli_flows import finish
from inprocess_cli import Family

from workers import cli, subprocess_env

HERE = Path(__file__).parent


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("pyworkflow: error: ")
    return lines[0]


def test_list_shows_every_hook_newest_first_and_no_token(family: Family) -> None:
    ids = family.ids
    listed = family.cli.json("hooks", "list")["hooks"]
    found = {(h["run_id"], h["name"]): h for h in listed}
    assert set(found) == {
        (ids["glanced"], "glance"),
        *((ids[doc], "approval") for doc in ("glanced", "inline", "stdin", "file", "done")),
        (ids["note"], "note"),
    }
    created = [h["created_at"] for h in listed]
    assert created == sorted(created, reverse=True)
    assert found[ids["glanced"], "glance"]["status"] == "expired"
    assert found[ids["glanced"], "glance"]["expires_at"] is not None
    assert found[ids["done"], "approval"]["status"] == "received"
    assert found[ids["done"], "approval"]["received_at"] is not None
    waiting = found[ids["inline"], "approval"]
    assert waiting["status"] == "waiting"
    assert waiting["hook_id"] == "hook:approval#1"
    assert waiting["payload_type"] == "familycli_flows:Approval"
    assert waiting["received_at"] is None
    assert found[ids["note"], "note"]["payload_type"] is None

    table = family.cli("hooks", "list")
    assert table.exit_code == 0, table.output
    rows = {tuple(line.split()[:4]) for line in table.stdout.splitlines()}
    assert (ids["glanced"], "hook:glance#1", "glance", "expired") in rows
    assert (ids["inline"], "hook:approval#1", "approval", "waiting") in rows
    assert "familycli_flows:Approval" in table.stdout
    for output in (table.stdout, json.dumps(listed)):
        assert not any(token in output for token in family.tokens.values())
        assert "hk_" not in output


def test_list_filters_by_run_status_and_limit(family: Family) -> None:
    ids = family.ids
    of_run = family.cli.json("hooks", "list", "--run", ids["glanced"])["hooks"]
    assert [h["name"] for h in of_run] == ["approval", "glance"]
    expired = family.cli.json("hooks", "list", "--status", "expired")["hooks"]
    assert [(h["run_id"], h["name"]) for h in expired] == [(ids["glanced"], "glance")]
    waiting = family.cli.json("hooks", "list", "--status", "waiting", "--run", ids["done"])
    assert waiting["hooks"] == []
    assert family.cli("hooks", "list", "--run", ids["done"], "--status", "waiting").stdout == (
        "no hooks match\n"
    )
    everything = family.cli.json("hooks", "list")["hooks"]
    assert family.cli.json("hooks", "list", "--limit", "2")["hooks"] == everything[:2]

    unknown = family.cli("hooks", "list", "--run", "run_nope")
    assert unknown.exit_code == 2
    assert "'run_nope' (given as --run)" in one_line(unknown.stderr)
    bad_status = family.cli("hooks", "list", "--status", "resting")
    assert bad_status.exit_code == 2
    assert "'resting' is not one of 'waiting', 'received', 'expired', 'pending'" in (
        bad_status.stderr
    )


def test_resume_delivers_a_typed_payload_once_and_the_run_goes_on(own_family: Family) -> None:
    pyworkflow, ids = own_family.cli, own_family.ids
    token = own_family.tokens["inline", "approval"]
    delivered = pyworkflow(
        "hooks", "resume", token, "--payload", '{"approved": true, "reviewer": "ana"}'
    )
    assert delivered.exit_code == 0, delivered.output
    assert f"hook 'approval' (hook:approval#1) of run {ids['inline']}" in delivered.stdout
    (hook,) = pyworkflow.json("hooks", "list", "--run", ids["inline"])["hooks"]
    assert hook["status"] == "received"

    again = pyworkflow(
        "hooks", "resume", token, "--payload", '{"approved": false, "reviewer": "x"}'
    )
    assert again.exit_code == 3
    assert "already received a payload; nothing delivered" in one_line(again.stderr)

    # A worker picks the run up and the workflow gets the payload as its dataclass.
    result = pyworkflow.run(lambda url: finish(url, ids["inline"]))
    assert result == {"doc": "inline", "approved": True, "by": "ana"}
    shown = pyworkflow("runs", "show", ids["inline"])
    assert 'hook:approval#1 received {"approved": true, "reviewer": "ana"}' in shown.stdout


def test_resume_reads_the_payload_from_stdin_or_a_file(own_family: Family, tmp_path: Path) -> None:
    pyworkflow, ids, tokens = own_family.cli, own_family.ids, own_family.tokens
    piped = pyworkflow(
        "hooks", "resume", tokens["note", "note"], "--payload", "-", stdin='[1, "two", null]\n'
    )
    assert piped.exit_code == 0, piped.output
    assert pyworkflow.run(lambda url: finish(url, ids["note"])) == [1, "two", None]

    payload = tmp_path / "decision.json"
    payload.write_text('{"approved": false, "reviewer": "bo"}')
    shaped = pyworkflow.json(
        "hooks", "resume", tokens["file", "approval"], "--payload-file", str(payload)
    )
    assert shaped["run_id"] == ids["file"]
    assert (shaped["hook_id"], shaped["name"], shaped["status"]) == (
        "hook:approval#1",
        "approval",
        "received",
    )
    assert shaped["payload_type"] == "familycli_flows:Approval"
    assert shaped["received_at"] is not None
    assert pyworkflow.run(lambda url: finish(url, ids["file"]))["approved"] is False


def test_refusals_are_one_line_with_an_exit_code_and_deliver_nothing(
    own_family: Family, tmp_path: Path
) -> None:
    pyworkflow, tokens = own_family.cli, own_family.tokens
    approval = tokens["stdin", "approval"]
    (tmp_path / "bad.json").write_text("{'approved': True}")
    before = pyworkflow.json("hooks", "list")
    refusals = [
        (["--payload", "{approved: true}"], 2, "--payload is not valid JSON"),
        (["--payload", "yes"], 2, "(a string needs its quotes"),
        (["--payload-file", str(tmp_path / "bad.json")], 2, "bad.json' is not valid JSON"),
        (["--payload", "-"], 2, "--payload - (stdin) is not valid JSON"),  # empty stdin
        (
            ["--payload", "1", "--payload-file", str(tmp_path / "bad.json")],
            2,
            "give the payload once",
        ),
        (["--payload", '{"approved": true}'], 2, "field 'reviewer': missing"),
        (["--payload", '{"approved": "yes", "reviewer": "x"}'], 2, "field 'approved'"),
    ]
    for options, code, says in refusals:
        result = pyworkflow("hooks", "resume", approval, *options, stdin="")
        assert result.exit_code == code, (options, result.output)
        assert says in one_line(result.stderr), options
        assert result.stdout == ""

    for token, code, says in [
        ("hk_not_a_token", 2, "no hook has this token"),
        (tokens["glanced", "glance"], 4, "expired before a payload arrived"),
        (tokens["done", "approval"], 2, "has ended"),
    ]:
        result = pyworkflow(
            "hooks", "resume", token, "--payload", '{"approved": true, "reviewer": "x"}'
        )
        assert result.exit_code == code, (token, result.output)
        line = one_line(result.stderr)
        assert says in line, line
        if code == 2:
            assert "hooks list --status waiting" in line
    assert pyworkflow.json("hooks", "list") == before


@pytest.mark.slow  # the CLI in a process of its own
def test_another_process_validates_by_importing_the_payload_type(own_family: Family) -> None:
    """As a user's shell would: where the workflow's module does not import, a clear refusal."""
    token = own_family.tokens["stdin", "approval"]
    command = cli(
        "hooks", "resume", token, "--payload", '{"approved": true}', "--storage", own_family.cli.url
    )
    elsewhere = subprocess.run(
        command,
        cwd=own_family.cli.db.parent,
        env=subprocess_env(own_family.cli.db.parent),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert elsewhere.returncode == 2
    line = one_line(elsewhere.stderr)
    assert "cannot import hook payload type 'familycli_flows:Approval'" in line
    assert "--module" in line

    # With the module named, the payload is checked against the type: the missing field is named.
    here = subprocess.run(
        [*command, "--module", "familycli_flows"],
        cwd=HERE,
        env=subprocess_env(HERE),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert here.returncode == 2
    assert "field 'reviewer': missing" in one_line(here.stderr)


def test_runs_show_lists_waiting_hooks_and_describes_hook_events(family: Family) -> None:
    run_id = family.ids["glanced"]
    shown = family.cli.json("runs", "show", run_id)
    assert [(h["name"], h["status"]) for h in shown["waiting_hooks"]] == [("approval", "waiting")]
    assert [e["type"] for e in shown["timeline"]] == [
        "workflow_started",
        "hook_created",
        "hook_expired",
        "hook_created",
    ]
    summaries = [e["summary"] for e in shown["timeline"]]
    expires = r"hook:glance#1 waits for a payload; expires in 0\.\d{3}s, at \d{4}-\d\d-\d\d "
    assert re.match(expires, summaries[1]), summaries[1]
    assert summaries[2] == "hook:glance#1 expired before a payload arrived"
    assert summaries[3] == "hook:approval#1 waits for a payload of type familycli_flows:Approval"

    table = family.cli("runs", "show", run_id)
    assert table.exit_code == 0, table.output
    assert "Waiting hooks" in table.stdout
    assert "nonce" not in table.stdout
    waiting = [line.split() for line in table.stdout.splitlines() if "hook:approval#1" in line]
    assert ["hook:approval#1", "approval", "waiting", "familycli_flows:Approval"] in [
        row[:4] for row in waiting
    ]
