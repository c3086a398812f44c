"""Take-overs: a claim names the owner it took a run from, and keeps suspects apart.

A run taken over ``SUSPECT_RECOVERIES`` times in a row without progress is a *suspect*: it may be
what kills its workers. ``claim_runs(suspects=...)`` lets an executor take suspects apart from
the other runs (one at a time), so that a crash is charged to the run that caused it.
"""

from __future__ import annotations

from storage_calls import LEASE, T0, claim, run_of, start, step_events, turn

from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import SUSPECT_RECOVERIES


async def claim_all(
    storage: Storage, now: float, owner: str, suspects: bool | None = None, limit: int = 100
) -> list[str]:
    claimed = await storage.claim_runs(
        owner=owner, now=now, lease_expires_at=now + LEASE, limit=limit, suspects=suspects
    )
    return sorted(r.run_id for r in claimed)


async def lapse(storage: Storage, run_ids: list[str], times: int) -> float:
    """Claim the runs ``times`` times in a row, each claim letting the previous lease lapse."""
    now = T0
    for i in range(times):
        now = T0 + i * (LEASE + 1)
        assert await claim_all(storage, now, f"w{i}") == sorted(run_ids)
    return now + LEASE + 1


async def test_a_free_lease_has_no_previous_owner(storage: Storage) -> None:
    await start(storage, "r1")
    assert (await claim(storage, "r1", owner="w1")).previous_owner is None
    assert (await run_of(storage, "r1")).previous_owner is None


async def test_a_take_over_names_the_owner_whose_lease_lapsed(storage: Storage) -> None:
    await start(storage, "r1")
    await start(storage, "r2")
    await claim_all(storage, T0, "dead")
    later = T0 + LEASE + 1
    claimed = await storage.claim_runs(
        owner="heir", now=later, lease_expires_at=later + LEASE, limit=10
    )
    assert {(r.run_id, r.previous_owner, r.lease_owner) for r in claimed} == {
        ("r1", "dead", "heir"),
        ("r2", "dead", "heir"),
    }
    # The name belongs to the claim's answer, not to the stored run.
    assert (await run_of(storage, "r1")).previous_owner is None


async def test_a_handed_back_run_is_no_take_over(storage: Storage) -> None:
    await start(storage, "r1")
    await claim(storage, "r1", owner="w1")
    await storage.release_runs(owner="w1", run_ids=["r1"], now=T0 + 1)
    record = await claim(storage, "r1", owner="w2", now=T0 + 2)
    assert (record.previous_owner, record.recovery_count) == (None, 0)


async def test_suspects_are_runs_taken_over_again_without_progress(storage: Storage) -> None:
    for run_id in ("a", "b", "c"):
        await start(storage, run_id)
    await claim_all(storage, T0, "w0")
    t1 = T0 + LEASE + 1
    for run_id in ("b", "c"):  # taken over once
        assert (await claim(storage, run_id, owner="w1", now=t1)).recovery_count == 1
    await storage.release_runs(owner="w1", run_ids=["b"], now=t1)
    t2 = t1 + LEASE + 1
    # a: its lease lapses a first time; b: taken over once, then handed back (no lapse now);
    # c: its lease lapses a second time in a row.
    assert SUSPECT_RECOVERIES == 2
    assert await claim_all(storage, t2, "w2", suspects=True) == ["c"]
    assert (await run_of(storage, "c")).recovery_count == 2
    assert await claim_all(storage, t2, "w2", suspects=True) == []
    assert await claim_all(storage, t2, "w2", suspects=False) == ["a", "b"]


async def test_a_claim_of_suspects_takes_as_many_as_asked(storage: Storage) -> None:
    run_ids = ["s1", "s2", "s3"]
    for run_id in run_ids:
        await start(storage, run_id)
    now = await lapse(storage, run_ids, SUSPECT_RECOVERIES)
    assert await claim_all(storage, now, "w", suspects=False) == []
    assert len(await claim_all(storage, now, "w", suspects=True, limit=1)) == 1
    assert len(await claim_all(storage, now, "w", suspects=None, limit=100)) == 2


async def test_progress_clears_a_suspect(storage: Storage) -> None:
    await start(storage, "r1")
    now = await lapse(storage, ["r1"], SUSPECT_RECOVERIES)
    record = await run_of(storage, "r1")
    owner = record.lease_owner
    assert owner is not None
    await turn(
        storage, "r1", owner, now=now - 1, events=step_events(1), progressed=True, wake_at=now
    )
    assert (await run_of(storage, "r1")).recovery_count == 0
    later = now + 2 * LEASE
    assert await claim_all(storage, later, "w", suspects=True) == []
    assert await claim_all(storage, later, "w", suspects=False) == ["r1"]
