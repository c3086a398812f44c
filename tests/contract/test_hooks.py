"""The storage contract of hooks: created by a run's append, delivered once, expired by its holder.

Each test runs against every backend (conftest.py). A hook is what ``resume_hook`` reaches from
outside: the checks are the ones its caller and the run's lease holder rely on. A token is
stored only as its hash; ``new_hook("t1")`` has token ``t1`` and id ``hook:t1``.
"""

from __future__ import annotations

import asyncio

import pytest
from storage_calls import (
    LEASE,
    NESTED,
    T0,
    claim,
    end,
    hook_created,
    hook_of,
    ids_claimable,
    new_hook,
    run_of,
    start,
    token_hash,
    turn,
    waiting_on,
)

from pyworkflow.events import HookStatus, RunStatus
from pyworkflow.exceptions import (
    ConcurrencyConflictError,
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
    StorageError,
)
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import EventRecord, HookRecord, RunRecord

Snapshot = tuple[HookRecord | None, RunRecord, list[EventRecord]]


async def snapshot(storage: Storage, token: str, run_id: str = "r1") -> Snapshot:
    """Everything a hook call could write: the hook, its run and the run's log."""
    return (
        await storage.get_hook(token_hash(token)),
        await run_of(storage, run_id),
        await storage.load_events(run_id),
    )


# --- creation ------------------------------------------------------------------------------------


async def test_an_append_creates_its_hooks_waiting(storage: Storage) -> None:
    hooks = [new_hook("t1", expires_at=T0 + 60), new_hook("t2", name="refund")]
    await waiting_on(storage, "r1", *hooks, now=T0 + 1)
    assert await hook_of(storage, "t1") == HookRecord(
        token_hash=token_hash("t1"),
        run_id="r1",
        hook_id="hook:t1",
        name="approval",
        status=HookStatus.WAITING,
        payload=None,
        payload_type="app.models:Approval",
        created_at=T0 + 1,
        expires_at=T0 + 60,
        received_at=None,
    )
    second = await hook_of(storage, "t2")
    assert (second.name, second.expires_at, second.run_id) == ("refund", None, "r1")
    assert isinstance(second.status, HookStatus)
    assert await storage.get_hook(token_hash("t3")) is None
    assert await storage.get_hook("t1") is None, "only the hash finds a hook"


async def test_a_refused_append_creates_no_hook(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    hook = new_hook("t1")
    with pytest.raises(ConcurrencyConflictError):
        await turn(storage, "r1", "w2", events=[hook_created(hook)], hooks=[hook])
    with pytest.raises(ConcurrencyConflictError):
        await turn(storage, "r1", expected_seq=0, events=[hook_created(hook)], hooks=[hook])
    assert await storage.get_hook(token_hash("t1")) is None
    assert await storage.list_hooks() == []


async def test_a_token_hash_taken_already_fails_the_whole_append(storage: Storage) -> None:
    await waiting_on(storage, "r0", new_hook("t1"))
    await start(storage, "r1")
    await claim(storage, "r1")
    before = await snapshot(storage, "t1", "r1")
    hooks = [new_hook("t2"), new_hook("t1")]
    with pytest.raises(StorageError):
        await turn(
            storage, "r1", events=[hook_created(h) for h in hooks], hooks=hooks, wake_at=T0 + 9
        )
    assert await snapshot(storage, "t1", "r1") == before
    assert (await hook_of(storage, "t1")).run_id == "r0"
    assert await storage.get_hook(token_hash("t2")) is None


# --- deliver_hook --------------------------------------------------------------------------------


async def test_deliver_stores_the_payload_and_signals_the_run(storage: Storage) -> None:
    await waiting_on(storage, "r1", new_hook("t1", expires_at=T0 + 60))
    run_before = await run_of(storage, "r1")
    assert run_before.wake_at is None
    assert await ids_claimable(storage, T0 + 5) == []

    delivered = await storage.deliver_hook(token_hash("t1"), NESTED, now=T0 + 5)

    assert (delivered.status, delivered.payload, delivered.received_at) == (
        HookStatus.RECEIVED,
        NESTED,
        T0 + 5,
    )
    assert await hook_of(storage, "t1") == delivered
    run = await run_of(storage, "r1")
    assert (run.signal_seq, run.wake_at, run.updated_at) == (1, T0 + 5, T0 + 5)
    assert run.status is RunStatus.SUSPENDED
    assert run.last_seq == run_before.last_seq, "an outside writer appends no event"
    assert await ids_claimable(storage, T0 + 5) == ["r1"]


async def test_deliver_to_a_leased_run_leaves_the_lease_and_reports_the_signal(
    storage: Storage,
) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    hook = new_hook("t1")
    await turn(storage, "r1", events=[hook_created(hook)], hooks=[hook], wake_at=T0 + 100)
    await storage.deliver_hook(token_hash("t1"), {"ok": True}, now=T0 + 1)
    assert (await run_of(storage, "r1")).lease_owner == "w1"
    assert await ids_claimable(storage, T0 + 2) == []
    result = await turn(storage, "r1", now=T0 + 2, keep_lease=False, wake_at=None)
    assert result.signal_seq == 1
    assert (await run_of(storage, "r1")).wake_at == T0 + 2, "the unseen signal keeps it due"


async def test_deliver_copies_the_payload_in_and_out(storage: Storage) -> None:
    await waiting_on(storage, "r1", new_hook("t1"))
    payload = {"items": [1]}
    delivered = await storage.deliver_hook(token_hash("t1"), payload, now=T0)
    payload["items"].append(2)
    delivered.payload["items"].append(3)
    assert (await hook_of(storage, "t1")).payload == {"items": [1]}


async def test_deliver_of_an_unknown_token_raises_not_found(storage: Storage) -> None:
    await waiting_on(storage, "r1", new_hook("t1"))
    before = await snapshot(storage, "t1")
    with pytest.raises(HookNotFoundError) as info:
        await storage.deliver_hook(token_hash("nope"), {"x": 1}, now=T0 + 1)
    assert info.value.token_hint == token_hash("nope")[:8]
    assert await snapshot(storage, "t1") == before


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.CANCELLED])
async def test_deliver_to_a_hook_of_an_ended_run_raises_not_found(
    storage: Storage, status: RunStatus
) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    hook = new_hook("t1")
    await turn(storage, "r1", events=[hook_created(hook)], hooks=[hook])
    await end(storage, "r1", status, now=T0 + 1)
    before = await snapshot(storage, "t1")
    with pytest.raises(HookNotFoundError) as info:
        await storage.deliver_hook(token_hash("t1"), {"x": 1}, now=T0 + 2)
    assert info.value.token_hint == token_hash("t1")[:8]
    assert "r1" in str(info.value)
    assert await snapshot(storage, "t1") == before
    assert before[0] is not None
    assert before[0].status is HookStatus.WAITING


async def test_a_second_delivery_raises_already_received(storage: Storage) -> None:
    await waiting_on(storage, "r1", new_hook("t1"))
    await storage.deliver_hook(token_hash("t1"), {"first": True}, now=T0 + 1)
    before = await snapshot(storage, "t1")
    with pytest.raises(HookAlreadyReceivedError) as info:
        await storage.deliver_hook(token_hash("t1"), {"second": True}, now=T0 + 2)
    assert (info.value.run_id, info.value.hook_id) == ("r1", "hook:t1")
    assert await snapshot(storage, "t1") == before
    assert (await hook_of(storage, "t1")).payload == {"first": True}


async def test_a_hook_expires_at_its_expires_at(storage: Storage) -> None:
    await waiting_on(storage, "r1", new_hook("early", expires_at=T0 + 10))
    await start(storage, "r2")
    await claim(storage, "r2")
    late = new_hook("late", expires_at=T0 + 10)
    await turn(storage, "r2", events=[hook_created(late)], hooks=[late])

    before = await snapshot(storage, "early")
    with pytest.raises(HookExpiredError) as info:
        await storage.deliver_hook(token_hash("early"), {"x": 1}, now=T0 + 10)
    assert (info.value.run_id, info.value.hook_id) == ("r1", "hook:early")
    assert await snapshot(storage, "early") == before
    assert before[0] is not None
    assert before[0].status is HookStatus.WAITING, "the time alone refuses; the row is not touched"

    delivered = await storage.deliver_hook(token_hash("late"), {"x": 2}, now=T0 + 9.5)
    assert delivered.status is HookStatus.RECEIVED


# --- expire_hook ---------------------------------------------------------------------------------


async def test_expire_turns_a_waiting_hook_expired_and_refuses_later_deliveries(
    storage: Storage,
) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    hook = new_hook("t1", expires_at=T0 + 10)
    await turn(storage, "r1", events=[hook_created(hook)], hooks=[hook], wake_at=T0 + 10)
    run_before = await run_of(storage, "r1")

    expired = await storage.expire_hook("r1", "hook:t1", now=T0 + 2)

    assert expired.status is HookStatus.EXPIRED
    assert (expired.payload, expired.received_at) == (None, None)
    assert await hook_of(storage, "t1") == expired
    assert await run_of(storage, "r1") == run_before, "the holder logs it; storage signals no one"
    assert await storage.expire_hook("r1", "hook:t1", now=T0 + 3) == expired, "idempotent"

    before = await snapshot(storage, "t1")
    with pytest.raises(HookExpiredError):  # before expires_at: the status refuses
        await storage.deliver_hook(token_hash("t1"), {"x": 1}, now=T0 + 4)
    assert await snapshot(storage, "t1") == before


async def test_expire_after_a_delivery_returns_the_received_hook(storage: Storage) -> None:
    await waiting_on(storage, "r1", new_hook("t1", expires_at=T0 + 10))
    delivered = await storage.deliver_hook(token_hash("t1"), {"approved": True}, now=T0 + 9)
    stands = await storage.expire_hook("r1", "hook:t1", now=T0 + 10)
    assert stands == delivered
    assert stands.payload == {"approved": True}
    assert await hook_of(storage, "t1") == delivered


async def test_expire_of_an_unknown_hook_raises_not_found(storage: Storage) -> None:
    await waiting_on(storage, "r1", new_hook("t1"))
    await waiting_on(storage, "r2", new_hook("t2"))
    with pytest.raises(HookNotFoundError):
        await storage.expire_hook("r1", "hook:nope", now=T0)
    with pytest.raises(HookNotFoundError):  # another run's hook
        await storage.expire_hook("r1", "hook:t2", now=T0)
    assert (await hook_of(storage, "t2")).status is HookStatus.WAITING


# --- list_hooks ----------------------------------------------------------------------------------


async def test_list_hooks_newest_first_with_filters(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1")
    for now, token in [(T0, "a"), (T0 + 2, "b")]:
        hook = new_hook(token)
        await turn(storage, "r1", now=now, events=[hook_created(hook)], hooks=[hook])
    await waiting_on(storage, "r2", new_hook("c"), now=T0 + 3)
    await storage.deliver_hook(token_hash("a"), {"x": 1}, now=T0 + 4)

    def tokens(hooks: list[HookRecord]) -> list[str]:
        return [h.hook_id.removeprefix("hook:") for h in hooks]

    assert tokens(await storage.list_hooks()) == ["c", "b", "a"]
    assert tokens(await storage.list_hooks(run_id="r1")) == ["b", "a"]
    assert tokens(await storage.list_hooks(status=HookStatus.WAITING)) == ["c", "b"]
    assert tokens(await storage.list_hooks(run_id="r1", status=HookStatus.RECEIVED)) == ["a"]
    assert tokens(await storage.list_hooks(status=HookStatus.EXPIRED)) == []
    assert tokens(await storage.list_hooks(run_id="nope")) == []
    assert tokens(await storage.list_hooks(limit=2)) == ["c", "b"]
    (received,) = await storage.list_hooks(status=HookStatus.RECEIVED)
    assert received == await hook_of(storage, "a")
    # Just the hooks a run waits on: by id, with the other filters.
    assert tokens(await storage.list_hooks(run_id="r1", hook_ids=["hook:a"])) == ["a"]

    async def received_of_r1(*hook_ids: str) -> list[str]:  # the engine's read at a wake
        return tokens(
            await storage.list_hooks(run_id="r1", status=HookStatus.RECEIVED, hook_ids=hook_ids)
        )

    assert await received_of_r1("hook:a", "hook:b") == ["a"]
    assert await received_of_r1("hook:b") == []
    assert tokens(await storage.list_hooks(hook_ids=["hook:a", "hook:c", "hook:zz"])) == ["c", "a"]
    assert tokens(await storage.list_hooks(run_id="r2", hook_ids=["hook:a"])) == []
    assert tokens(await storage.list_hooks(status=HookStatus.WAITING, hook_ids=["hook:a"])) == []
    assert await storage.list_hooks(hook_ids=[]) == []


# --- retention -----------------------------------------------------------------------------------


async def test_deleting_an_ended_run_deletes_its_hooks(storage: Storage) -> None:
    for run_id, token in [("old", "t-old"), ("kept", "t-kept")]:
        await start(storage, run_id)
        await claim(storage, run_id)
        hook = new_hook(token)
        await turn(storage, run_id, events=[hook_created(hook)], hooks=[hook])
    await end(storage, "old", now=T0 + 1)
    kept = await hook_of(storage, "t-kept")

    assert await storage.delete_ended_runs(ended_before=T0 + 100, limit=10) == ["old"]

    assert await storage.get_hook(token_hash("t-old")) is None
    assert await storage.list_hooks(run_id="old") == []
    assert await storage.list_hooks() == [kept]


# --- races ---------------------------------------------------------------------------------------


async def test_of_50_concurrent_deliveries_exactly_one_wins(sharing: list[Storage]) -> None:
    await waiting_on(sharing[0], "r1", new_hook("t1"))
    outcomes = await asyncio.gather(
        *(
            sharing[i % len(sharing)].deliver_hook(token_hash("t1"), {"caller": i}, now=T0 + 1)
            for i in range(50)
        ),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, HookRecord)]
    lost = [o for o in outcomes if isinstance(o, HookAlreadyReceivedError)]
    assert (len(won), len(lost)) == (1, 49), outcomes
    stored = await hook_of(sharing[-1], "t1")
    assert stored == won[0]
    assert stored.payload == {"caller": outcomes.index(won[0])}
    assert (await run_of(sharing[-1], "r1")).signal_seq == 1, "one signal, not fifty"


async def test_a_delivery_racing_the_expiry_has_one_outcome(sharing: list[Storage]) -> None:
    tokens = [f"t{i}" for i in range(10)]
    for token in tokens:
        await waiting_on(sharing[0], f"r-{token}", new_hook(token, expires_at=T0 + LEASE))
    for i, token in enumerate(tokens):
        deliverer, expirer = sharing[i % 5], sharing[(i + 1) % 5]
        delivered, stands = await asyncio.gather(
            deliverer.deliver_hook(token_hash(token), {"n": i}, now=T0 + 1),
            expirer.expire_hook(f"r-{token}", f"hook:{token}", now=T0 + 1),
            return_exceptions=True,
        )
        assert isinstance(stands, HookRecord), stands
        assert stands == await hook_of(sharing[0], token)
        if isinstance(delivered, HookRecord):  # the delivery won: expiry sees the payload
            assert (stands.status, stands.payload) == (HookStatus.RECEIVED, {"n": i})
            assert (await run_of(sharing[0], f"r-{token}")).signal_seq == 1
        else:  # the expiry won: the delivery was refused and wrote nothing
            assert isinstance(delivered, HookExpiredError), delivered
            assert (stands.status, stands.payload) == (HookStatus.EXPIRED, None)
            assert (await run_of(sharing[0], f"r-{token}")).signal_seq == 0
