"""Run families (children, continue-as-new chains) and waiting hooks, on memory and SQLite.

One test drives real workflows (on the test environment's virtual clock); the others craft
families the engine leaves only after retention or a crash: chains with pruned ends, many
children to page through.
"""

from __future__ import annotations

from typing import Any

import pytest
from crafted_runs import T0, call, craft, lease, log, new_run

from pyworkflow import continue_as_new, hook, start_child_workflow, workflow
from pyworkflow.events import HookStatus, RunStatus
from pyworkflow.exceptions import InputError, RunNotFoundError
from pyworkflow.inspect import (
    get_chain,
    get_run_details,
    hook_json,
    list_children,
    list_hooks,
)
from pyworkflow.serialization import Codec
from pyworkflow.storage import Storage
from pyworkflow.testing import WorkflowEnvironment


@workflow()
async def inspect_leaf(n: int) -> int:
    return n * 10


@workflow()
async def inspect_waiter(doc: str) -> Any:
    return await hook("approval")


@workflow()
async def inspect_parent(n: int) -> int:
    await start_child_workflow(
        inspect_waiter, "doc-1", wait_for_completion=False, parent_close_policy="abandon"
    )
    result: int = await start_child_workflow(inspect_leaf, n)
    return result


@workflow()
async def inspect_countdown(n: int) -> str:
    if n > 0:
        continue_as_new(n - 1)
    return "liftoff"


async def test_the_family_of_real_runs(storage: Storage) -> None:
    async with WorkflowEnvironment(storage) as env:
        parent = await env.start(inspect_parent, 4)
        assert await env.result(parent) == 40
        first = await env.start(inspect_countdown, 2)
        assert await env.result(first) == "liftoff"
        await env.clock.advance(0)

    page = await list_children(storage, parent)
    assert page.next_before is None
    found = {(c.workflow, c.status, c.parent_close_policy) for c in page.children}
    assert found == {
        ("inspect_waiter", RunStatus.SUSPENDED, "abandon"),
        ("inspect_leaf", RunStatus.COMPLETED, "cancel"),
    }
    assert {c.parent_run_id for c in page.children} == {parent}

    details = await get_run_details(storage, parent, codec=Codec())
    assert [c.run_id for c in details.children] == [c.run_id for c in page.children]
    assert details.more_children is False
    started = [e.summary for e in details.timeline if e.type == "child_workflow_started"]
    assert started[0].endswith("not awaited, parent close policy abandon")

    waiter = next(c for c in page.children if c.workflow == "inspect_waiter")
    (waiting,) = (await get_run_details(storage, waiter.run_id, codec=Codec())).waiting_hooks
    assert (waiting.name, waiting.status, waiting.run_id) == (
        "approval",
        HookStatus.WAITING,
        waiter.run_id,
    )
    assert await list_hooks(storage, status=HookStatus.WAITING) == [waiting]
    assert await list_hooks(storage, run_id=parent) == []
    document = hook_json(waiting)
    assert list(document) == [
        "run_id", "hook_id", "name", "status", "payload_type", "created_at", "expires_at",
        "received_at",
    ]  # fmt: skip
    assert (document["status"], document["expires_at"]) == ("waiting", None)

    chain = await get_chain(storage, first, codec=Codec())
    assert [link.arguments for link in chain.links] == [
        {"args": [2], "kwargs": {}},
        {"args": [1], "kwargs": {}},
        {"args": [0], "kwargs": {}},
    ]
    assert [link.run.status for link in chain.links] == [
        RunStatus.CONTINUED_AS_NEW, RunStatus.CONTINUED_AS_NEW, RunStatus.COMPLETED
    ]  # fmt: skip
    assert [link.given for link in chain.links] == [True, False, False]
    assert (chain.pruned_before, chain.pruned_after) == (None, None)
    # Asked from any run of it, the chain is the same.
    last = chain.links[-1].run.run_id
    again = await get_chain(storage, last, codec=Codec())
    assert [link.run.run_id for link in again.links] == [link.run.run_id for link in chain.links]
    assert [link.given for link in again.links] == [False, False, True]


async def test_children_page_newest_first(storage: Storage) -> None:
    kids = [
        new_run(f"run_kid{n}", parent="run_p", policy="abandon" if n % 2 else "cancel",
                created=T0 + n)
        for n in range(5)
    ]  # fmt: skip
    await craft(storage, new_run("run_p"), status=RunStatus.COMPLETED, new_runs=kids)
    seen: list[str] = []
    before = None
    while True:
        page = await list_children(storage, "run_p", limit=2, before=before)
        seen += [c.run_id for c in page.children]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == [f"run_kid{n}" for n in reversed(range(5))]
    first = await list_children(storage, "run_p", limit=2)
    assert first.to_json()["next_before"] == "run_kid3"
    assert [c["parent_close_policy"] for c in first.to_json()["children"]] == ["cancel", "abandon"]
    assert (await list_children(storage, "run_kid0")).children == []

    details = await get_run_details(storage, "run_p", codec=Codec())
    assert (len(details.children), details.more_children) == (5, False)


async def test_a_run_shows_its_newest_children_and_whether_there_are_more(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pyworkflow.inspect.details.CHILDREN_SHOWN", 3)
    kids = [new_run(f"run_kid{n}", parent="run_p", created=T0 + n) for n in range(4)]
    await craft(storage, new_run("run_p"), status=RunStatus.COMPLETED, new_runs=kids)
    details = await get_run_details(storage, "run_p", codec=Codec())
    assert [c.run_id for c in details.children] == ["run_kid3", "run_kid2", "run_kid1"]
    assert details.more_children is True


@pytest.mark.parametrize(
    ("run_id", "before"), [("run_nope", None), ("run_p", "run_nope")], ids=["parent", "before"]
)
async def test_unknown_runs_in_a_children_listing(
    storage: Storage, run_id: str, before: str | None
) -> None:
    await craft(storage, new_run("run_p"))
    with pytest.raises(RunNotFoundError) as raised:
        await list_children(storage, run_id, before=before)
    assert raised.value.run_id == "run_nope"


async def chain_of_three(storage: Storage, *, b_ends_at: float = T0 + 10) -> None:
    """run_a -> run_b -> run_c, each started with its number."""
    created = min(T0 + 2, b_ends_at - 2)
    b = new_run("run_b", continued_from="run_a", arguments=call(2), created=created)
    await craft(
        storage, new_run("run_a", arguments=call(1)), status=RunStatus.CONTINUED_AS_NEW,
        new_runs=[b],
    )  # fmt: skip
    await lease(storage, "run_b")
    c = new_run("run_c", continued_from="run_b", arguments=call(3), created=T0 + 20)
    await log(
        storage, "run_b", since=b_ends_at - 1, status=RunStatus.CONTINUED_AS_NEW, new_runs=[c]
    )


async def test_a_chain_from_its_middle_and_its_json(storage: Storage) -> None:
    await chain_of_three(storage)
    chain = await get_chain(storage, "run_b", codec=Codec())
    assert [link.run.run_id for link in chain.links] == ["run_a", "run_b", "run_c"]
    assert [link.given for link in chain.links] == [False, True, False]
    document = chain.to_json()
    assert document["run_id"] == "run_b"
    middle = document["chain"][1]
    assert list(middle)[-2:] == ["args", "given"]
    assert (middle["continued_from"], middle["continued_to"]) == ("run_a", "run_c")
    assert (middle["args"], middle["given"]) == ({"args": [2], "kwargs": {}}, True)


async def test_a_chain_whose_ends_were_pruned_stops_there_and_says_so(storage: Storage) -> None:
    # run_b starts and ends before run_a (crafted times): a bound between prunes run_b alone.
    await chain_of_three(storage, b_ends_at=T0 - 100)
    assert await storage.delete_ended_runs(ended_before=T0, limit=10) == ["run_b"]
    before = await get_chain(storage, "run_a", codec=Codec())
    assert [link.run.run_id for link in before.links] == ["run_a"]
    assert (before.pruned_before, before.pruned_after) == (None, "run_b")
    after = await get_chain(storage, "run_c", codec=Codec())
    assert [link.run.run_id for link in after.links] == ["run_c"]
    assert (after.pruned_before, after.pruned_after) == ("run_b", None)


async def test_a_chain_within_a_reach_says_where_it_was_cut(storage: Storage) -> None:
    await chain_of_three(storage)
    near = await get_chain(storage, "run_b", codec=Codec(), reach=1)
    assert [link.run.run_id for link in near.links] == ["run_a", "run_b", "run_c"]
    assert (near.cut_before, near.cut_after) == (False, False)  # both ends reached
    alone = await get_chain(storage, "run_b", codec=Codec(), reach=0)
    assert [link.run.run_id for link in alone.links] == ["run_b"]
    assert (alone.cut_before, alone.cut_after) == (True, True)
    assert (alone.pruned_before, alone.pruned_after) == (None, None)  # cut, not pruned
    from_start = await get_chain(storage, "run_a", codec=Codec(), reach=1)
    assert [link.run.run_id for link in from_start.links] == ["run_a", "run_b"]
    assert (from_start.cut_before, from_start.cut_after) == (False, True)
    with pytest.raises(InputError, match="reach"):
        await get_chain(storage, "run_b", codec=Codec(), reach=-1)
