"""The replay checker (``pyworkflow.testing``): recorded runs against today's code.

Runs are recorded for real (memory and SQLite), then "the code changes": ``CODE[tok]`` picks
the body a workflow runs, as a deploy would. The checker must find the first divergence with
its position and both commands, pass what still replays, execute no step and write nothing.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import pyworkflow
from engine.run_log import wait_status
from pyworkflow import (
    FatalError,
    InputError,
    RunNotFoundError,
    RunStatus,
    WorkflowFailedError,
    WorkflowNotFoundError,
    patched,
    sleep,
    step,
    workflow,
)
from pyworkflow.storage.protocol import Storage
from pyworkflow.testing import (
    HISTORY_FORMAT,
    ReplayResult,
    load_history,
    replay_history,
    replay_run,
    replay_runs,
    save_history,
)

GOLDEN = Path(__file__).parent.parent / "golden"
CALLS: Counter[str] = Counter()
CODE: dict[str, str] = {}


@step(name="trc_fetch")
async def fetch(tok: str) -> dict[str, Any]:
    CALLS["fetch"] += 1
    return {"tok": tok, "total": 3}


@step(name="trc_charge")
async def charge(order: dict[str, Any]) -> str:
    CALLS["charge"] += 1
    return f"charged {order['total']}"


@step(name="trc_fraud_check")
async def fraud_check(order: dict[str, Any]) -> bool:
    CALLS["fraud_check"] += 1
    return True


@step(name="trc_receipt", max_retries=0)
async def receipt(tok: str) -> str:
    CALLS["receipt"] += 1
    if CODE.get(f"{tok}:fail"):
        raise FatalError("printer on fire")
    return "receipt"


@workflow(name="trc_checkout")
async def checkout(tok: str) -> list[Any]:
    code = CODE.get(tok, "v1")
    order = await fetch(tok)
    # "inserted": a new step before the charge, unguarded, so in-flight runs diverge.
    if code == "inserted" or (code == "patched" and patched("fraud-check")):
        await fraud_check(order)
    charged = await charge(order)
    if code.startswith("waits"):
        await sleep("1d")
    if code in ("longer", "waits-longer"):
        await receipt(tok)
    return [charged, await receipt(tok)]


def fresh(label: str) -> str:
    """A token of this test alone (each backend's run of a test gets its own)."""
    return f"{label}-{uuid.uuid4().hex[:8]}"


async def record(tok: str) -> str:
    """Run ``checkout`` to its end under the given code; returns the run id."""
    run_id = await pyworkflow.start(checkout, tok)
    with contextlib.suppress(WorkflowFailedError):
        await pyworkflow.get_workflow_result(run_id, timeout=10)
    return run_id


def assert_diverged(result: ReplayResult, position: int, logged: str, issued: str) -> None:
    assert not result.ok
    assert result.error is None
    divergence = result.divergence
    assert divergence is not None
    assert (divergence.position, divergence.logged, divergence.issued) == (position, logged, issued)
    assert result.run_id in str(divergence)


# --- from storage --------------------------------------------------------------------------------


async def test_an_unchanged_workflow_replays(pw: Storage) -> None:
    run_id = await record(fresh("unchanged"))
    executed = sum(CALLS.values())
    result = await replay_run(pw, run_id)
    assert result.ok, result.divergence
    assert (result.run_id, result.workflow_name) == (run_id, "trc_checkout")
    assert result.event_count == len(await pw.load_events(run_id))
    assert sum(CALLS.values()) == executed, "a replay executes no step"


async def test_a_changed_workflow_diverges_at_the_first_changed_command(pw: Storage) -> None:
    tok = fresh("changed")
    run_id = await record(tok)
    CODE[tok] = "inserted"
    result = await replay_run(pw, run_id)
    assert_diverged(result, 1, "step 'trc_charge'", "step 'trc_fraud_check'")
    assert result.to_dict()["divergence"] == {
        "position": 1,
        "logged": "step 'trc_charge'",
        "issued": "step 'trc_fraud_check'",
        "message": str(result.divergence),
    }


async def test_a_patched_change_replays_old_and_new_runs(pw: Storage) -> None:
    old_tok, new_tok = fresh("patch-old"), fresh("patch-new")
    old_run = await record(old_tok)
    CODE[old_tok] = CODE[new_tok] = "patched"
    new_run = await record(new_tok)
    results = await replay_runs(pw, run_ids=[old_run, new_run])
    assert [r.run_id for r in results] == [old_run, new_run]
    assert all(r.ok for r in results), [r.divergence for r in results]

    # The patch removed too early: the run that recorded it no longer replays.
    CODE[new_tok] = "inserted"
    result = await replay_run(pw, new_run)
    assert_diverged(result, 1, "patched('fraud-check')", "step 'trc_fraud_check'")


async def test_a_completed_run_must_end_where_its_log_ended(pw: Storage) -> None:
    tok = fresh("longer")
    run_id = await record(tok)
    CODE[tok] = "longer"
    result = await replay_run(pw, run_id)
    assert_diverged(result, 3, "the workflow's end (completed)", "step 'trc_receipt'")


async def test_a_run_in_flight_may_go_on_past_its_log(pw: Storage) -> None:
    pyworkflow.configure(horizon_seconds=0.05)
    tok = fresh("in-flight")
    CODE[tok] = "waits"
    run_id = await pyworkflow.start(checkout, tok)
    await wait_status(run_id, RunStatus.SUSPENDED)
    # It waits on its sleep: what the code does after the sleep may change freely.
    CODE[tok] = "waits-longer"
    assert (await replay_run(pw, run_id)).ok
    # Without the sleep, the code lost a command the log has.
    CODE[tok] = "v1"
    result = await replay_run(pw, run_id)
    assert_diverged(result, 2, "sleep", "step 'trc_receipt'")


async def test_a_failed_run_is_checked_by_its_commands_only(pw: Storage) -> None:
    tok = fresh("failed")
    CODE[f"{tok}:fail"] = "yes"
    run_id = await record(tok)
    assert (await pyworkflow.get_workflow_run(run_id)).status.value == "failed"
    # Its end came from a step failure; resumed under new code, it would carry on. Fine.
    del CODE[f"{tok}:fail"]
    assert (await replay_run(pw, run_id)).ok
    CODE[tok] = "inserted"
    assert not (await replay_run(pw, run_id)).ok


async def test_replay_runs_selects_runs_and_reports_progress(pw: Storage) -> None:
    toks = [fresh("many") for _ in range(3)]
    runs = [await record(tok) for tok in toks]
    CODE[toks[1]] = "inserted"
    seen: list[tuple[str, int]] = []
    results = await replay_runs(
        pw, workflow_name="trc_checkout", on_result=lambda r, total: seen.append((r.run_id, total))
    )
    mine = {r.run_id: r for r in results if r.run_id in runs}
    assert len(mine) == 3
    assert [run_id for run_id, r in mine.items() if not r.ok] == [runs[1]]
    assert [total for _, total in seen] == [len(results)] * len(results)
    assert [run_id for run_id, _ in seen] == [r.run_id for r in results]

    assert await replay_runs(pw, workflow_name="trc_checkout", statuses=["suspended"]) == []
    everything = await replay_runs(pw)
    assert {r.run_id for r in everything} >= set(runs)


async def test_replay_writes_nothing(pw: Storage) -> None:
    tok = fresh("read-only")
    run_id = await record(tok)
    CODE[tok] = "inserted"
    before = (await pw.get_run(run_id), await pw.load_events(run_id))
    assert not (await replay_run(pw, run_id)).ok
    await replay_runs(pw, workflow_name="trc_checkout")
    assert (await pw.get_run(run_id), await pw.load_events(run_id)) == before


# --- bad input -----------------------------------------------------------------------------------


async def test_unknown_runs_and_workflows_raise_before_any_replay(pw: Storage) -> None:
    run_id = await record(fresh("bad-input"))
    with pytest.raises(RunNotFoundError):
        await replay_run(pw, "run_nope")
    seen: list[ReplayResult] = []
    with pytest.raises(RunNotFoundError):
        await replay_runs(pw, run_ids=[run_id, "run_nope"], on_result=lambda r, n: seen.append(r))
    with pytest.raises(WorkflowNotFoundError):
        await replay_runs(pw, workflow_name="trc_not_registered")
    with pytest.raises(InputError, match="not both"):
        await replay_runs(pw, workflow_name="trc_checkout", run_ids=[run_id])
    with pytest.raises(InputError, match="'sleeping'"):
        await replay_runs(pw, statuses=["sleeping"])
    assert seen == []


async def test_a_history_that_is_not_one_is_refused() -> None:
    with pytest.raises(InputError, match="empty"):
        await replay_history(checkout, [])


# --- JSON exports --------------------------------------------------------------------------------


async def test_an_export_replays_like_the_stored_run(pw: Storage, tmp_path: Path) -> None:
    tok = fresh("exported")
    run_id = await record(tok)
    events = await pyworkflow.get_workflow_events(run_id)
    path = tmp_path / "exported.json"
    save_history(events, path)

    document = json.loads(path.read_text())
    assert document["format"] == HISTORY_FORMAT
    assert (document["workflow"], document["run_id"]) == ("trc_checkout", run_id)
    assert [e["seq"] for e in document["events"]] == [e.seq for e in events]
    assert [e["payload"] for e in document["events"]] == [e.data for e in events]

    history = load_history(path)
    assert (history.workflow_name, history.run_id) == ("trc_checkout", run_id)
    assert (await replay_history(checkout, history)).ok
    CODE[tok] = "inserted"
    result = await replay_history("trc_checkout", history)
    assert_diverged(result, 1, "step 'trc_charge'", "step 'trc_fraud_check'")


@pytest.mark.parametrize("name", ["golden_sequence", "golden_gather_sleep", "golden_resume"])
async def test_the_golden_histories_load_and_replay(name: str) -> None:
    from golden import workflows  # noqa: F401  (registers the golden workflows)

    history = load_history(GOLDEN / f"{name}.json")
    assert history.workflow_name == name
    assert history.run_id == name, "without a run id in the file, its name stands in"
    result = await replay_history(name, history)
    assert result.ok, result.divergence
    for stop in range(1, len(history.events)):
        assert (await replay_history(name, history.events[:stop])).ok, stop


def test_the_cli_history_shape_loads(tmp_path: Path) -> None:
    path = tmp_path / "from-cli.json"
    events = [
        {
            "run_id": "run_cli",
            "seq": 1,
            "type": "workflow_started",
            "timestamp": "2024-05-01T12:00:00+00:00",
            "data": {"v": 1, "workflow": "trc_checkout", "args": {"args": ["x"], "kwargs": {}}},
        }
    ]
    path.write_text(json.dumps({"run_id": "run_cli", "events": events}))
    history = load_history(path)
    assert (history.workflow_name, history.run_id, len(history.events)) == (
        "trc_checkout",
        "run_cli",
        1,
    )


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (None, "cannot read"),
        ("{not json", "not JSON"),
        ('{"workflow": "trc_checkout"}', "does not hold a history"),
        ('{"workflow": "x", "events": [{"seq": 1, "type": "nope", "payload": {}}]}', "nope"),
        (
            '{"workflow": "x", "events": [{"seq": 1, "type": "step_completed", "payload": {}}]}',
            "workflow_started",
        ),
    ],
)
def test_a_bad_history_file_names_itself(
    tmp_path: Path, content: str | None, complaint: str
) -> None:
    path = tmp_path / "bad-history.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=complaint) as info:
        load_history(path)
    assert "bad-history.json" in str(info.value)
