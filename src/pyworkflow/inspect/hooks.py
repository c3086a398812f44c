"""The hooks runs wait on, as readers list them: never a token, since only its hash is stored."""

from __future__ import annotations

from typing import Any

from pyworkflow.events import HookStatus
from pyworkflow.hooks import HookInfo
from pyworkflow.inspect.runs import stored_run
from pyworkflow.storage import Storage

__all__ = ["hook_json", "list_hooks"]


def hook_json(info: HookInfo) -> dict[str, Any]:
    """A hook in JSON: ``run_id``, ``hook_id``, ``name``, ``status``, ``payload_type``, ...

    ... ``created_at``, ``expires_at``, ``received_at`` (ISO strings or null). Never a token.
    """
    return {
        "run_id": info.run_id,
        "hook_id": info.hook_id,
        "name": info.name,
        "status": info.status.value,
        "payload_type": info.payload_type,
        "created_at": info.created_at.isoformat(),
        "expires_at": None if info.expires_at is None else info.expires_at.isoformat(),
        "received_at": None if info.received_at is None else info.received_at.isoformat(),
    }


async def list_hooks(
    storage: Storage,
    *,
    run_id: str | None = None,
    status: HookStatus | None = None,
    limit: int = 100,
) -> list[HookInfo]:
    """Hooks newest first, of one run and/or in one status.

    Example:
        >>> waiting = await list_hooks(storage, run_id=run_id, status=HookStatus.WAITING)

    Raises:
        RunNotFoundError: ``run_id`` names no run.
    """
    if run_id is not None:
        await stored_run(storage, run_id)
    records = await storage.list_hooks(run_id=run_id, status=status, limit=limit)
    return [HookInfo.from_record(r) for r in records]
