"""`pyworkflow runs children|chain`, and parents, children and chains in `runs show`.

The runs were driven by real workflows (familycli_flows): ``familycli_parent(4)`` started four
children (one abandoned and still sleeping, one cancelled when the parent ended, one that
failed, one awaited to its result) and ``familycli_countdown(3)`` continued as new three times.
The CLI runs in this process (tests/cli/conftest.py).
"""

from __future__ import annotations

import re

import pytest
from inprocess_cli import Family

CHAIN = ["chain_1", "chain_2", "chain_3", "chain_4"]


def facts_of(family: Family, run_id: str) -> dict[str, str]:
    """The label/value lines `runs show` prints above the timeline."""
    shown = family.cli("runs", "show", run_id)
    assert shown.exit_code == 0, shown.output
    head = shown.stdout.split("\nTimeline")[0]
    pairs = (re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in head.splitlines())
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def test_children_lists_each_child_with_its_status_and_policy(family: Family) -> None:
    parent = family.ids["parent"]
    listed = family.cli.json("runs", "children", parent)
    assert listed["next_before"] is None
    children = listed["children"]
    created = [c["created_at"] for c in children]
    assert created == sorted(created, reverse=True)
    found = {(c["workflow"], c["status"], c["parent_close_policy"]) for c in children}
    assert found == {
        ("familycli_lingering", "suspended", "abandon"),
        ("familycli_lingering", "cancelled", "cancel"),
        ("familycli_broken", "failed", "cancel"),
        ("familycli_leaf", "completed", "cancel"),
    }
    assert {c["parent_run_id"] for c in children} == {parent}
    ended = {c["status"]: c["completed_at"] for c in children}
    assert ended["suspended"] is None
    assert all(ended[s] for s in ("cancelled", "failed", "completed"))

    table = family.cli("runs", "children", parent)
    assert table.exit_code == 0, table.output
    rows = {line.split()[0]: line.split()[1:4] for line in table.stdout.splitlines()[2:]}
    for c in children:
        assert rows[c["run_id"]] == [c["workflow"], c["status"], c["parent_close_policy"]]


def test_children_pages_newest_first(family: Family) -> None:
    parent = family.ids["parent"]
    every = [c["run_id"] for c in family.cli.json("runs", "children", parent)["children"]]
    seen: list[str] = []
    before: list[str] = []
    while True:
        page = family.cli.json("runs", "children", parent, "--limit", "3", *before)
        seen += [c["run_id"] for c in page["children"]]
        if page["next_before"] is None:
            break
        assert page["next_before"] == seen[-1]
        before = ["--before", page["next_before"]]
    assert seen == every
    assert len(every) == 4

    first = family.cli("runs", "children", parent, "--limit", "3")
    assert first.stdout.splitlines()[-1] == f"more children: add --before {every[2]}"
    leaf = family.cli("runs", "children", family.ids["chain_1"])
    assert leaf.stdout == f"run {family.ids['chain_1']} has no child runs\n"


def test_show_a_parent_lists_its_children_and_describes_their_events(family: Family) -> None:
    parent = family.ids["parent"]
    shown = family.cli.json("runs", "show", parent)
    assert shown["more_children"] is False
    children = {c["run_id"]: c for c in shown["children"]}
    listed = family.cli.json("runs", "children", parent)["children"]
    assert list(children) == [c["run_id"] for c in listed]
    by_event: dict[str, list[str]] = {}
    for entry in shown["timeline"]:
        by_event.setdefault(entry["type"], []).append(entry["summary"])
    started = by_event["child_workflow_started"]
    abandoned = next(c for c in listed if c["parent_close_policy"] == "abandon")["run_id"]
    assert (
        f"child:familycli_lingering#1 started as {abandoned}, not awaited, "
        "parent close policy abandon"
    ) in started
    leaf = next(c for c in listed if c["workflow"] == "familycli_leaf")["run_id"]
    assert f"child:familycli_leaf#1 started as {leaf}, awaited, parent close policy cancel" in (
        started
    )
    assert by_event["child_workflow_completed"] == [f"child:familycli_leaf#1 ({leaf}) -> 40"]
    (failed,) = by_event["child_workflow_failed"]
    assert failed.endswith("failed: pyworkflow.exceptions.FatalError: out of stock")

    table = family.cli("runs", "show", parent)
    assert table.exit_code == 0, table.output
    assert "Children (newest first)" in table.stdout
    for run_id in children:
        assert run_id in table.stdout
    assert "more children" not in table.stdout


def test_show_a_child_names_its_parent_and_policy(family: Family) -> None:
    parent = family.ids["parent"]
    listed = family.cli.json("runs", "children", parent)["children"]
    abandoned = next(c for c in listed if c["parent_close_policy"] == "abandon")["run_id"]
    shown = family.cli.json("runs", "show", abandoned)
    assert (shown["parent_run_id"], shown["parent_close_policy"]) == (parent, "abandon")
    assert (shown["continued_from"], shown["continued_to"]) == (None, None)
    facts = facts_of(family, abandoned)
    assert facts["parent run"] == parent
    assert facts["parent close"] == "abandon (runs on if the parent ends first)"
    assert "continued from" not in facts


@pytest.mark.parametrize("given", CHAIN)
def test_chain_lists_the_runs_first_to_last_from_any_of_them(family: Family, given: str) -> None:
    ids = family.ids
    listed = family.cli.json("runs", "chain", ids[given])
    assert listed["run_id"] == ids[given]
    chain = listed["chain"]
    assert [r["run_id"] for r in chain] == [ids[k] for k in CHAIN]
    assert [r["given"] for r in chain] == [k == given for k in CHAIN]
    assert [r["args"] for r in chain] == [{"args": [n], "kwargs": {}} for n in (3, 2, 1, 0)]
    assert [r["status"] for r in chain] == ["continued_as_new"] * 3 + ["completed"]
    assert [r["continued_from"] for r in chain] == [None] + [ids[k] for k in CHAIN[:-1]]
    assert [r["continued_to"] for r in chain] == [ids[k] for k in CHAIN[1:]] + [None]

    table = family.cli("runs", "chain", ids[given]).stdout.splitlines()
    (marked,) = [line.split() for line in table if line.startswith(">")]
    position = CHAIN.index(given)
    assert marked[:3] == [">", str(position + 1), ids[given]]
    assert f"familycli_countdown({3 - position})" in marked


def test_a_run_outside_any_chain_is_a_chain_of_one(family: Family) -> None:
    run_id = family.ids["parent"]
    (only,) = family.cli.json("runs", "chain", run_id)["chain"]
    assert (only["run_id"], only["given"], only["status"]) == (run_id, True, "completed")


def test_show_a_chain_link_and_its_continued_as_new_event(family: Family) -> None:
    ids = family.ids
    shown = family.cli.json("runs", "show", ids["chain_2"])
    assert (shown["continued_from"], shown["continued_to"]) == (ids["chain_1"], ids["chain_3"])
    assert shown["timeline"][-1]["type"] == "workflow_continued_as_new"
    assert shown["timeline"][-1]["summary"] == f"continued as {ids['chain_3']}"
    facts = facts_of(family, ids["chain_2"])
    assert (facts["continued from"], facts["continued to"]) == (ids["chain_1"], ids["chain_3"])


@pytest.mark.parametrize("command", ["children", "chain"])
def test_an_unknown_run_is_one_line_and_exit_2(family: Family, command: str) -> None:
    result = family.cli("runs", command, "run_nope")
    assert result.exit_code == 2
    assert result.stderr.startswith("pyworkflow: error: no workflow run with id 'run_nope'")
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""
