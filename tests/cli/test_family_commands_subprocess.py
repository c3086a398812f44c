"""`pyworkflow hooks list|resume` and `runs children|chain` as a shell runs them: the real
command in a process of its own, on a real SQLite file.

test_hooks_cli.py and test_families_cli.py check these commands in depth in this process (a
subprocess costs ~0.5 s); these tests check that the command (``python -m pyworkflow.cli``)
does the same from outside: its own imports, its own event loop, its exit codes and stderr. The
database is the one ``familycli_flows.seed`` fills (tests/cli/conftest.py); a worker's part
(continuing a run after a delivery) is played in this process by ``familycli_flows.finish``, as
the in-process tests do.

Commands that need no workflow code run from the database's directory, where ``familycli_flows``
does not import; ``hooks resume`` of a typed hook runs from this directory, as a user runs it
from the project's, so that the payload type imports.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from familycli_flows import finish
from inprocess_cli import Family

from workers import cli, subprocess_env

pytestmark = pytest.mark.slow  # the CLI in processes of its own

HERE = Path(__file__).parent
DECISION = '{"approved": true, "reviewer": "ana"}'


def pyworkflow(
    family: Family, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``pyworkflow *args --storage sqlite:///<family's db>`` in a process of its own."""
    where = cwd or family.cli.db.parent
    return subprocess.run(
        cli(*args, "--storage", family.cli.url),
        cwd=where,
        env=subprocess_env(where),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def document(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a command that succeeded printed."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def test_hooks_list_json_shows_every_hook_and_no_token(family: Family) -> None:
    ids = family.ids
    listed = pyworkflow(family, "hooks", "list", "--json")
    hooks = document(listed)["hooks"]
    found = {(h["run_id"], h["name"]): (h["status"], h["payload_type"]) for h in hooks}
    assert found == {
        (ids["glanced"], "glance"): ("expired", None),
        (ids["glanced"], "approval"): ("waiting", "familycli_flows:Approval"),
        (ids["inline"], "approval"): ("waiting", "familycli_flows:Approval"),
        (ids["stdin"], "approval"): ("waiting", "familycli_flows:Approval"),
        (ids["file"], "approval"): ("waiting", "familycli_flows:Approval"),
        (ids["done"], "approval"): ("received", "familycli_flows:Approval"),
        (ids["note"], "note"): ("waiting", None),
    }
    assert not any(token in listed.stdout for token in family.tokens.values())
    assert "hk_" not in listed.stdout


def test_hooks_resume_delivers_a_typed_payload_and_the_run_completes(own_family: Family) -> None:
    ids = own_family.ids
    token = own_family.tokens["inline", "approval"]
    delivered = document(
        pyworkflow(own_family, "hooks", "resume", token, "--payload", DECISION, "--json", cwd=HERE)
    )
    assert delivered["run_id"] == ids["inline"]
    assert (delivered["hook_id"], delivered["status"]) == ("hook:approval#1", "received")
    assert token not in json.dumps(delivered)

    # A worker continues the run: the workflow reads the payload as its Approval dataclass.
    result = own_family.cli.run(lambda url: finish(url, ids["inline"]))
    assert result == {"doc": "inline", "approved": True, "by": "ana"}
    # From the project's directory, as a user looks: the payload's type decodes there.
    shown = document(pyworkflow(own_family, "runs", "show", ids["inline"], "--json", cwd=HERE))
    assert (shown["status"], shown["result"]) == ("completed", result)
    summaries = [e["summary"] for e in shown["timeline"] if e["type"] == "hook_received"]
    assert summaries == ['hook:approval#1 received {"approved": true, "reviewer": "ana"}']


def test_a_second_delivery_exits_3_with_one_line_and_delivers_nothing(
    own_family: Family,
) -> None:
    ids = own_family.ids
    token = own_family.tokens["stdin", "approval"]
    first = own_family.cli("hooks", "resume", token, "--payload", DECISION)
    assert first.exit_code == 0, first.output

    again = pyworkflow(
        own_family,
        "hooks",
        "resume",
        token,
        "--payload",
        '{"approved": false, "reviewer": "eve"}',
        cwd=HERE,
    )
    assert again.returncode == 3
    assert again.stdout == ""
    (line,) = again.stderr.strip().splitlines()
    assert line.startswith("pyworkflow: error: ")
    assert line.endswith("already received a payload; nothing delivered")

    result = own_family.cli.run(lambda url: finish(url, ids["stdin"]))
    assert result == {"doc": "stdin", "approved": True, "by": "ana"}


def test_runs_children_json_lists_the_four_children(family: Family) -> None:
    parent = family.ids["parent"]
    listed = document(pyworkflow(family, "runs", "children", parent, "--json"))
    assert (listed["run_id"], listed["next_before"]) == (parent, None)
    children = listed["children"]
    assert {(c["workflow"], c["status"], c["parent_close_policy"]) for c in children} == {
        ("familycli_lingering", "suspended", "abandon"),
        ("familycli_lingering", "cancelled", "cancel"),
        ("familycli_broken", "failed", "cancel"),
        ("familycli_leaf", "completed", "cancel"),
    }
    assert {c["parent_run_id"] for c in children} == {parent}
    created = [c["created_at"] for c in children]
    assert created == sorted(created, reverse=True)


def test_runs_chain_json_lists_the_chain_from_a_middle_run(family: Family) -> None:
    ids = family.ids
    chain = ["chain_1", "chain_2", "chain_3", "chain_4"]
    listed = document(pyworkflow(family, "runs", "chain", ids["chain_2"], "--json"))
    assert listed["run_id"] == ids["chain_2"]
    runs = listed["chain"]
    assert [r["run_id"] for r in runs] == [ids[k] for k in chain]
    assert [r["given"] for r in runs] == [False, True, False, False]
    assert [r["args"]["args"] for r in runs] == [[3], [2], [1], [0]]
    assert [r["status"] for r in runs] == ["continued_as_new"] * 3 + ["completed"]
    assert [r["continued_to"] for r in runs] == [ids[k] for k in chain[1:]] + [None]
