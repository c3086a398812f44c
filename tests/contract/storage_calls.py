"""Calls on a storage that the contract tests share: runs to create, turns to append, claims.

Times are plain floats from a fake clock starting at ``T0``; a lease lasts ``LEASE`` seconds.
Each helper asserts what it needs (the run was created, the claim got the run), so a test reads
as the scenario it checks.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pyworkflow.events import EventType, RunStatus
from pyworkflow.queues import DEFAULT_QUEUE
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import (
    AppendResult,
    AppendWrite,
    HookRecord,
    NewEvent,
    NewHook,
    NewRun,
    RunRecord,
)

T0 = 1_700_000_000.0
LEASE = 30.0

NESTED: dict[str, Any] = {
    "v": 1,
    "text": 'héllo wörld — 日本語 🚀 \u0000-free "quoted" \\ back',
    "numbers": [0, -1, 2**53, 1.5, -0.25, 1e-300],
    "flags": [True, False, None],
    "empty": {"list": [], "dict": {}, "string": ""},
    "deep": {"a": {"b": {"c": [{"d": [1, [2, [3, {"e": "ü"}]]]}]}}},
    "ключ": "значение",
}


def new_run(
    run_id: str,
    *,
    workflow: str = "wf",
    now: float = T0,
    key: str | None = None,
    args: Any = None,
    payload: dict[str, Any] | None = None,
    owner: str | None = None,
    lease_expires_at: float | None = None,
    parent: str | None = None,
    policy: str | None = None,
    continued_from: str | None = None,
    queue: str = DEFAULT_QUEUE,
    tags: tuple[str, ...] = (),
) -> NewRun:
    return NewRun(
        run_id=run_id,
        workflow_name=workflow,
        args={"args": [1, 2], "kwargs": {}} if args is None else args,
        started_payload={"v": 1, "input": run_id} if payload is None else payload,
        now=now,
        idempotency_key=key,
        parent_run_id=parent,
        lease_owner=owner,
        lease_expires_at=lease_expires_at,
        parent_close_policy=policy,
        continued_from=continued_from,
        queue=queue,
        tags=tags,
    )


async def start(storage: Storage, run_id: str, **kwargs: Any) -> RunRecord:
    record, created = await storage.create_run(new_run(run_id, **kwargs))
    assert created
    return record


async def claim(storage: Storage, run_id: str, owner: str = "w1", now: float = T0) -> RunRecord:
    claimed = await storage.claim_runs(
        owner=owner, now=now, lease_expires_at=now + LEASE, limit=10, run_ids=[run_id]
    )
    assert [r.run_id for r in claimed] == [run_id]
    return claimed[0]


async def run_of(storage: Storage, run_id: str) -> RunRecord:
    record = await storage.get_run(run_id)
    assert record is not None
    return record


async def turn(
    storage: Storage,
    run_id: str,
    owner: str = "w1",
    *,
    now: float = T0,
    events: list[NewEvent] | None = None,
    expected_seq: int | None = None,
    keep_lease: bool = True,
    **changes: Any,
) -> AppendResult:
    """Append as ``owner``, by default at the run's current seq and keeping the lease."""
    if expected_seq is None:
        expected_seq = (await run_of(storage, run_id)).last_seq
    return await storage.append(
        AppendWrite(
            run_id=run_id,
            owner=owner,
            expected_seq=expected_seq,
            events=events or [],
            now=now,
            lease_expires_at=now + LEASE if keep_lease else None,
            **changes,
        )
    )


def step_events(n: int, tag: str = "s") -> list[NewEvent]:
    return [NewEvent(EventType.STEP_COMPLETED, {"v": 1, "step": f"{tag}#{i}"}) for i in range(n)]


async def ids_claimable(storage: Storage, now: float, owner: str = "probe") -> list[str]:
    """Claim everything due at ``now`` (as a throwaway owner) and return the ids."""
    claimed = await storage.claim_runs(
        owner=owner, now=now, lease_expires_at=now + LEASE, limit=1000
    )
    return [r.run_id for r in claimed]


# --- hooks ---------------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    """What the engine stores of a token: its hex SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_hook(token: str, *, expires_at: float | None = None, name: str = "approval") -> NewHook:
    """A hook whose token is ``token`` and whose id in its run is ``hook:<token>``."""
    return NewHook(
        token_hash=token_hash(token),
        hook_id=f"hook:{token}",
        name=name,
        payload_type="app.models:Approval",
        expires_at=expires_at,
    )


def hook_created(hook: NewHook) -> NewEvent:
    return NewEvent(EventType.HOOK_CREATED, {"v": 1, "hook_id": hook.hook_id, "name": hook.name})


async def waiting_on(
    storage: Storage, run_id: str, *hooks: NewHook, now: float = T0, owner: str = "w1"
) -> AppendResult:
    """Start ``run_id`` and suspend it on ``hooks``: unleased, waking only on a signal."""
    await start(storage, run_id, now=now)
    await claim(storage, run_id, owner, now=now)
    return await turn(
        storage,
        run_id,
        owner,
        now=now,
        events=[hook_created(h) for h in hooks],
        hooks=list(hooks),
        status=RunStatus.SUSPENDED,
        wake_at=None,
        keep_lease=False,
    )


async def hook_of(storage: Storage, token: str) -> HookRecord:
    record = await storage.get_hook(token_hash(token))
    assert record is not None
    return record


async def end(
    storage: Storage,
    run_id: str,
    status: RunStatus = RunStatus.COMPLETED,
    *,
    now: float = T0,
    owner: str = "w1",
    new_runs: list[NewRun] | None = None,
) -> AppendResult:
    """Claim ``run_id`` (if ``owner`` does not hold it) and end it with ``status`` at ``now``."""
    if (await run_of(storage, run_id)).lease_owner != owner:
        await claim(storage, run_id, owner, now=now)
    return await turn(
        storage,
        run_id,
        owner,
        now=now,
        events=[NewEvent(ENDINGS[status], {"v": 1})],
        status=status,
        keep_lease=False,
        new_runs=new_runs or [],
    )


ENDINGS = {
    RunStatus.COMPLETED: EventType.WORKFLOW_COMPLETED,
    RunStatus.FAILED: EventType.WORKFLOW_FAILED,
    RunStatus.CANCELLED: EventType.WORKFLOW_CANCELLED,
    RunStatus.CONTINUED_AS_NEW: EventType.WORKFLOW_CONTINUED_AS_NEW,
}
