"""Runs written straight through the storage protocol, with exactly the events a test wants.

The read model reads logs as any version wrote them, so its tests write the logs themselves:
every kind of event, payloads of odd shapes, values that cannot be decoded, families whose
links point at runs no longer stored. Importable as ``crafted_runs`` (tests/inspect is on
``sys.path`` while its tests run).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyworkflow.events import EventType, RunStatus
from pyworkflow.serialization import Codec
from pyworkflow.storage import AppendWrite, NewEvent, NewRun, Storage

OWNER = "crafter"
T0 = 1_714_564_800.0
"""2024-05-01 12:00:00 UTC: when crafted runs start unless told otherwise."""

Events = Sequence[tuple[EventType, dict[str, Any]]]


def call(*args: Any, **kwargs: Any) -> Any:
    """The encoded ``{"args", "kwargs"}`` a run is started with."""
    return Codec().encode({"args": list(args), "kwargs": kwargs})


def new_run(
    run_id: str,
    *,
    workflow: str = "wf",
    created: float = T0,
    arguments: Any = None,
    parent: str | None = None,
    policy: str | None = None,
    continued_from: str | None = None,
    key: str | None = None,
) -> NewRun:
    """A run leased to ``OWNER``, so that ``craft`` can append to it."""
    encoded = call() if arguments is None else arguments
    return NewRun(
        run_id=run_id,
        workflow_name=workflow,
        args=encoded,
        started_payload={"v": 1, "workflow": workflow, "args": encoded, "idempotency_key": key},
        now=created,
        idempotency_key=key,
        parent_run_id=parent,
        parent_close_policy=policy,
        continued_from=continued_from,
        lease_owner=OWNER,
        lease_expires_at=created + 1e6,
    )


async def craft(storage: Storage, run: NewRun, events: Events = (), **ending: Any) -> str:
    """Create ``run``, then ``log`` its ``events`` (and ``ending``, see there); its id."""
    await storage.create_run(run)
    await log(storage, run.run_id, events, since=run.now, **ending)
    return run.run_id


async def log(
    storage: Storage,
    run_id: str,
    events: Events = (),
    *,
    since: float = T0,
    after_seq: int = 1,
    status: RunStatus | None = None,
    result: Any = None,
    error: dict[str, Any] | None = None,
    new_runs: Sequence[NewRun] = (),
    gap: float = 1.0,
) -> None:
    """Append ``events`` one at a time, ``gap`` seconds apart from ``since``, as ``OWNER``.

    With a ``status``, a last write sets it (with ``result``/``error``), creates ``new_runs``
    (children, or the run a continue-as-new starts) and releases the lease.
    """
    seq = after_seq
    for n, (kind, payload) in enumerate(events, start=1):
        await storage.append(
            AppendWrite(
                run_id=run_id,
                owner=OWNER,
                expected_seq=seq,
                events=[NewEvent(kind, {"v": 1, **payload})],
                now=since + n * gap,
                lease_expires_at=since + 1e6,
            )
        )
        seq += 1
    if status is not None:
        await storage.append(
            AppendWrite(
                run_id=run_id,
                owner=OWNER,
                expected_seq=seq,
                events=[],
                now=since + (len(events) + 1) * gap,
                status=status,
                result=result,
                error=error,
                wake_at=since + 86400 if status is RunStatus.SUSPENDED else None,
                new_runs=new_runs,
            )
        )


async def lease(storage: Storage, run_id: str) -> None:
    """Take the lease of a run ``craft`` created unleased (a child, a continuation)."""
    claimed = await storage.claim_runs(
        owner=OWNER, now=T0, lease_expires_at=T0 + 1e6, limit=1, run_ids=[run_id], due_only=False
    )
    assert [r.run_id for r in claimed] == [run_id]
