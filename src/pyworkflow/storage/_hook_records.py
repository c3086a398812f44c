"""The hook records of the Storage protocol: a hook row to create, and a stored hook.

A hook is created by the append that logs its HOOK_CREATED (``AppendWrite.hooks``) and found
again by its token's hash when a payload is delivered; storage keeps the hash, never the token.
Re-exported by ``pyworkflow.storage.records``, their public home.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyworkflow.events import HookStatus

__all__ = ["HookRecord", "NewHook"]


@dataclass(frozen=True, slots=True)
class NewHook:
    """A hook row, created by the append that logs its HOOK_CREATED.

    Attributes:
        token_hash: hex SHA-256 of the token; the token itself is never stored.
        hook_id: the hook's command id in its run, e.g. ``"hook:approval#1"``.
        name: the name the workflow gave it.
        payload_type: import path of the payload type (``"pkg.mod:Model"``), or None.
        expires_at: when it times out, or None.
    """

    token_hash: str
    hook_id: str
    name: str
    payload_type: str | None = None
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class HookRecord:
    """One stored hook. ``payload`` is the encoded payload once received."""

    token_hash: str
    run_id: str
    hook_id: str
    name: str
    status: HookStatus
    payload: Any
    payload_type: str | None
    created_at: float
    expires_at: float | None
    received_at: float | None


# Their public home: type paths in encoded values, reprs and pickles name it, as before the split.
for _name in __all__:
    if isinstance(globals()[_name], type):
        globals()[_name].__module__ = "pyworkflow.storage.records"
