"""Delivering hook payloads from outside: ``resume_hook`` and the hooks of a run.

``resume_hook`` is the outside writer of DESIGN §7: it never appends to the run's log. It finds
the hook by the hash of its token, validates a typed hook's payload against the type recorded
with it (importing it by path, so the caller needs no workflow code), encodes the payload, and
stores it with one conditional write that also makes the run due. The run's lease holder then
logs HOOK_RECEIVED. Every refusal is typed and writes nothing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyworkflow import _payload_types
from pyworkflow._engine.hook_tokens import derive_token, hash_token, pending_rows, token_hint
from pyworkflow.durations import to_datetime
from pyworkflow.events import EventType, HookStatus
from pyworkflow.exceptions import HookNotFoundError, RunNotFoundError
from pyworkflow.per_call import same_storage
from pyworkflow.runtime import get_runtime
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import HookRecord

__all__ = ["HookInfo", "list_hooks", "resume_hook", "resume_waiting_hook"]

_ROW_WAIT = 5.0  # seconds resume_hook waits for the row of a token handed out in this process


@dataclass(frozen=True, slots=True)
class HookInfo:
    """A hook as listings show it: never its token.

    Attributes:
        run_id: the run waiting on it.
        hook_id: its id in the run, e.g. ``"hook:approval#1"``.
        name: the name the workflow gave it.
        status: ``waiting``, ``received`` or ``expired``.
        payload_type: import path of its payload type, or None.
        created_at / expires_at / received_at: when it was created, times out, got its payload.
    """

    run_id: str
    hook_id: str
    name: str
    status: HookStatus
    payload_type: str | None
    created_at: datetime
    expires_at: datetime | None
    received_at: datetime | None

    @classmethod
    def from_record(cls, record: HookRecord) -> HookInfo:
        """The listing of a stored hook (storage's ``list_hooks`` returns those)."""

        def when(value: float | None) -> datetime | None:
            # An expiry stored before durations were bounded may lie past year 9999.
            return None if value is None else to_datetime(value)

        return cls(
            run_id=record.run_id,
            hook_id=record.hook_id,
            name=record.name,
            status=record.status,
            payload_type=record.payload_type,
            created_at=to_datetime(record.created_at),
            expires_at=when(record.expires_at),
            received_at=when(record.received_at),
        )


async def resume_hook(
    token: str, payload: Any = None, *, storage: Storage | str | None = None
) -> HookInfo:
    """Deliver ``payload`` to the hook that handed out ``token``; the run wakes and goes on.

    Safe from any process: concurrent calls with one token apply exactly one payload.

    Example:
        >>> await resume_hook(token, {"approved": True, "reviewer": "ana"})

    Returns:
        The hook, now ``received``.

    Raises:
        HookNotFoundError: no hook has this token, or its run has ended.
        HookAlreadyReceivedError: the hook already took a payload.
        HookExpiredError: the hook's timeout has passed.
        InvalidHookPayloadError: the payload does not fit the typed hook (names the field).
        SerializationError: the payload cannot be encoded.

    ``storage``: accepted for code written for the pyworkflow documentation; it must be the
    configured storage.
    """
    await same_storage(storage)
    if not isinstance(token, str) or not token:
        raise HookNotFoundError(repr(token)[:10], "a hook token is a non-empty string")
    runtime = await get_runtime()
    storage = runtime.storage
    token_hash = hash_token(token)
    hook = await _find(storage, token_hash)
    if hook is None:
        raise HookNotFoundError(token_hint(token))
    if hook.status is HookStatus.WAITING and hook.payload_type is not None:
        # Only a hook that can still take a payload validates it: a second delivery or a late
        # one hears that, not a complaint about its payload.
        payload_type = _payload_types.load_type(hook.payload_type)
        payload = _payload_types.validate(hook.name, payload_type, payload)
    encoded = runtime.codec.encode(payload, path=f"payload of hook {hook.name!r}")
    try:
        delivered = await storage.deliver_hook(token_hash, encoded, now=runtime.executor.now())
    except HookNotFoundError as exc:
        raise HookNotFoundError(token_hint(token), exc.detail) from None
    runtime.executor.wake(delivered.run_id)
    return HookInfo.from_record(delivered)


async def resume_waiting_hook(run_id: str, hook_id: str, payload: Any = None) -> HookInfo:
    """Deliver ``payload`` to the hook ``hook_id`` of ``run_id``, for an operator without its token.

    The token is derived again from the nonce the run logged with the hook and this process's
    hook key (the configured ``secret_key``, else this machine's key), then delivered as
    ``resume_hook`` does: the same validation, the same refusals. A process whose key is not
    the one the run's worker used derives another token, and the hook is not found. Used by
    the dashboard, whose operators see hooks but never their tokens.

    Example:
        >>> await resume_waiting_hook(run_id, "hook:approval#1", {"approved": True})

    Raises:
        RunNotFoundError: no such run.
        HookNotFoundError: the run never created ``hook_id``, or this process's key is not the
            one the run's worker used (configure the same ``secret_key``).
        HookAlreadyReceivedError, HookExpiredError, InvalidHookPayloadError: as ``resume_hook``.
    """
    runtime = await get_runtime()
    if await runtime.storage.get_run(run_id) is None:
        raise RunNotFoundError(run_id)
    nonce = None
    for event in await runtime.storage.load_events(run_id):
        data = event.payload
        if event.type is EventType.HOOK_CREATED and data.get("hook_id") == hook_id:
            nonce = data.get("nonce")
    if not isinstance(nonce, str):
        raise HookNotFoundError(hook_id, f"run {run_id!r} created no hook {hook_id!r}")
    token = derive_token(runtime.codec.signing_key, run_id, hook_id, nonce)
    try:
        return await resume_hook(token, payload)
    except HookNotFoundError as exc:
        if await runtime.storage.get_hook(hash_token(token)) is None:
            raise HookNotFoundError(
                hook_id,
                "the token derived with this process's hook key matches no stored hook: "
                "configure the secret_key (PYWORKFLOW_SECRET_KEY) the workers use",
            ) from exc
        raise


async def _find(storage: Storage, token_hash: str) -> HookRecord | None:
    """The hook, waiting a moment for one whose creating turn is still being committed here."""
    deadline = time.monotonic() + _ROW_WAIT
    while True:
        hook = await storage.get_hook(token_hash)
        if hook is not None or token_hash not in pending_rows or time.monotonic() > deadline:
            return hook
        await asyncio.sleep(0.005)


async def list_hooks(
    *,
    run_id: str | None = None,
    status: HookStatus | str | None = None,
    limit: int = 100,
    storage: Storage | str | None = None,
) -> list[HookInfo]:
    """Hooks newest first, of one run and/or in one status (never their tokens).

    ``storage``: as for ``resume_hook``.
    """
    await same_storage(storage)
    runtime = await get_runtime()
    wanted = None if status is None else HookStatus(status)
    records = await runtime.storage.list_hooks(run_id=run_id, status=wanted, limit=limit)
    return [HookInfo.from_record(r) for r in records]
