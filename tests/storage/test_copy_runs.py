"""Moving from SQLite to PostgreSQL: runs in flight copied, then finished on the destination.

A user's promise, checked end to end: runs suspended in a sleep, waiting on a hook, a parent
waiting on its child and a continue-as-new chain are copied from SQLite to PostgreSQL while the
SQLite worker still holds their leases; a worker on PostgreSQL then takes them at once and
finishes them: the hooks take payloads sent with the tokens handed out before the copy, the
sleep fires at its original absolute time, and no step whose completion was logged runs again.
Both sides run on the virtual clock (WorkflowEnvironment), so an hour passes in milliseconds.
Also: ``memory://`` to SQLite keeps a test's whole history for ``pyworkflow runs show``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyworkflow
from postgres_server import PostgresServer
from pyworkflow import (
    RunStatus,
    continue_as_new,
    hook,
    now,
    sleep,
    start_child_workflow,
    step,
    workflow,
)
from pyworkflow.inspect import get_history, get_run_details, iso
from pyworkflow.serialization import Codec
from pyworkflow.storage import SQLiteStorage, Storage, copy_runs, storage_from_url
from pyworkflow.testing import WorkflowEnvironment

CALLS: Counter[str] = Counter()
START = datetime(2030, 1, 1, tzinfo=UTC)
MOVED = START + timedelta(minutes=10)  # when the copy is done and PostgreSQL's worker starts


@step(name="copy_tally")
async def tally(label: str) -> str:
    CALLS[label] += 1
    return label


@workflow(name="copy_sleeper")
async def sleeper(label: str) -> list[str]:
    await tally(f"{label}:before")
    await sleep("1h")
    woke = now().isoformat()
    await tally(f"{label}:after")
    return [label, woke]


@workflow(name="copy_approver")
async def approver(label: str) -> Any:
    await tally(f"{label}:before")
    answer = await hook("approval")
    await tally(f"{label}:after")
    return answer


@workflow(name="copy_parent")
async def parent(label: str) -> Any:
    await tally(f"{label}:before")
    answer = await start_child_workflow(approver, f"{label}-child")
    await tally(f"{label}:after")
    return {"child said": answer}


@workflow(name="copy_chain")
async def chain(round_: int) -> int:
    await tally(f"chain{round_}:before")
    if round_ == 0:
        continue_as_new(1)
    await sleep("30m")
    return round_


async def start_everything(env: WorkflowEnvironment) -> dict[str, str]:
    """The runs, suspended on SQLite; their ids by name."""
    ids = {
        "sleeper": await env.start(sleeper, "s"),
        "approver": await env.start(approver, "a"),
        "parent": await env.start(parent, "p"),
        "chain": await env.start(chain, 0),
    }
    await env.advance(0)
    (child,) = await env.storage.list_runs(parent_run_id=ids["parent"])
    ids["child"] = child.run_id
    return ids


async def test_runs_in_flight_finish_on_postgres_after_the_copy(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    CALLS.clear()
    source_url = f"sqlite:///{tmp_path / 'app.db'}"
    destination = storage_from_url(str(postgres_server.fresh_url()))
    async with WorkflowEnvironment(source_url, start_time=START) as old:
        ids = await start_everything(old)
        tokens = {
            name: await old.hook_token(ids[name], "approval") for name in ("approver", "child")
        }
        statuses = {name: (await old.get_run(run_id)).status for name, run_id in ids.items()}
        assert statuses["chain"] is RunStatus.CONTINUED_AS_NEW
        assert {statuses[n] for n in ("sleeper", "approver", "parent", "child")} == {
            RunStatus.SUSPENDED
        }
        held = [r for r in await old.storage.list_runs() if r.lease_owner is not None]
        # The copy, while the SQLite worker is still up: its leases name it, not PostgreSQL's.
        report = await copy_runs(old.storage, destination)
    assert report.runs == 6  # the chain is two runs
    assert report.leases_dropped == len(held)
    before = Counter(CALLS)
    assert before == Counter(
        {"s:before": 1, "a:before": 1, "p:before": 1, "p-child:before": 1, "chain0:before": 1,
         "chain1:before": 1}
    )  # fmt: skip

    async with WorkflowEnvironment(destination, start_time=MOVED) as new:
        await new.advance(0)
        # The tokens handed out before the copy resume the hooks on PostgreSQL.
        await pyworkflow.resume_hook(tokens["approver"], {"approved": True})
        await pyworkflow.resume_hook(tokens["child"], "child ok")
        await new.advance(0)
        assert await new.result(ids["approver"], timeout=10) == {"approved": True}
        assert await new.result(ids["parent"], timeout=10) == {"child said": "child ok"}
        # The sleep keeps its absolute wake time: not a moment before START + 1h.
        await new.advance(START + timedelta(hours=1) - timedelta(seconds=1))
        assert (await new.get_run(ids["sleeper"])).status is RunStatus.SUSPENDED
        assert await new.result(ids["sleeper"], timeout=10) == [
            "s",
            (START + timedelta(hours=1)).isoformat(),
        ]
        assert (
            await new.result(ids["chain"], timeout=10) == 1
        )  # followed along the chain on PostgreSQL
    assert CALLS - before == Counter({"s:after": 1, "a:after": 1, "p:after": 1, "p-child:after": 1})
    await destination.close()


async def test_a_test_history_kept_in_sqlite_reads_as_it_was(tmp_path: Path) -> None:
    CALLS.clear()
    async with WorkflowEnvironment(start_time=START) as env:
        ids = await start_everything(env)
        await env.resume_hook(ids["approver"], "approval", "yes")
        await env.advance("1h")
        kept = f"sqlite:///{tmp_path / 'kept.db'}"
        report = await copy_runs(env.storage, kept)
        memory: Storage = env.storage
        shown = {run_id: await shows(memory, run_id) for run_id in ids.values()}
        leased = {r.run_id: r.updated_at for r in await memory.list_runs() if r.lease_owner}
    assert report.runs == 6
    store = SQLiteStorage(kept)
    try:
        kept_shown = {run_id: await shows(store, run_id) for run_id in ids.values()}
    finally:
        await store.close()
    # The environment's worker held leases on the waiting runs: on SQLite they are free and due.
    assert set(leased) == {ids["parent"], ids["child"]}
    for run_id, last_change in leased.items():
        assert kept_shown[run_id][0].pop("wake_at") == iso(last_change)
        shown[run_id][0].pop("wake_at")
    assert kept_shown == shown
    assert shown[ids["sleeper"]][0]["status"] == "completed"
    assert shown[ids["parent"]][0]["status"] == "suspended"


async def shows(storage: Storage, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What `pyworkflow runs show --json` and `runs history --json` print of a run."""
    details = await get_run_details(storage, run_id, codec=Codec())
    return details.to_json(), (await get_history(storage, run_id)).to_json()
