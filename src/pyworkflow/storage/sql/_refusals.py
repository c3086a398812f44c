"""Why a write wrote nothing, in our errors; and whether a retried write had committed after all.

A SQL write decides with one conditional statement and finds no row when it refuses; only then
(a cold path) does its script read the row as it stands and explain. A write retried on a new
connection (PostgreSQL: the first one broke with the write in flight) may instead find its own
first attempt committed: :func:`is_own_write` and :func:`delivered_by_us` tell, from the stored
rows alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pyworkflow._json_text import encode
from pyworkflow.events import HookStatus, RunStatus
from pyworkflow.exceptions import (
    ConcurrencyConflictError,
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
    IdempotencyConflictError,
    InvalidRunStateError,
    PyWorkflowError,
    RunNotFoundError,
)
from pyworkflow.storage.records import AppendWrite, EventRecord, NewRun, RunRecord
from pyworkflow.storage.sql._decoding import hook_from_row, run_from_row
from pyworkflow.storage.sql.schema import hooks

__all__ = [
    "append_refused",
    "delivered_by_us",
    "hook_not_found",
    "hook_refused",
    "idempotent_twin",
    "is_own_write",
    "reopen_refused",
]

_HOOK_COLUMN = {column.name: i for i, column in enumerate(hooks.c)}


def idempotent_twin(run: NewRun, row: Sequence[Any]) -> RunRecord:
    """The run that already holds ``run``'s idempotency key.

    Raises:
        IdempotencyConflictError: it is a run of another workflow.
    """
    twin = run_from_row(row)
    assert run.idempotency_key is not None  # only a keyed run has a twin
    if twin.workflow_name != run.workflow_name:
        raise IdempotencyConflictError(run.idempotency_key, twin.workflow_name, run.workflow_name)
    return twin


def append_refused(write: AppendWrite, state: Sequence[Any] | None) -> PyWorkflowError:
    """Why an append was refused, from the run's ``RUN_STATE`` row (None: no such run)."""
    if state is None:
        return RunNotFoundError(write.run_id)
    last_seq, lease_owner, status = state
    if last_seq != write.expected_seq:
        reason = f"the run's last seq is {last_seq} (stale seq)"
    elif lease_owner is None:
        reason = f"{write.owner!r} holds no lease on it (run is {status})"
    else:
        reason = f"its lease is held by {lease_owner!r}, not {write.owner!r} (stale lease)"
    return ConcurrencyConflictError(write.run_id, write.expected_seq, reason)


def reopen_refused(run_id: str, state: Sequence[Any] | None) -> PyWorkflowError:
    """Why a run could not be reopened, from its ``RUN_STATE`` row (None: no such run)."""
    if state is None:
        return RunNotFoundError(run_id)
    return InvalidRunStateError(run_id, state[2], "only a failed run can be resumed")


def hook_refused(
    token_hash: str, now: float, state: Sequence[Any] | None
) -> PyWorkflowError | None:
    """Why a delivery was refused, from the hook's ``HOOK_STATE`` row (None: no such hook).

    None when the row as read now would take the payload: it changed since the refusal (a
    failed run was resumed meanwhile), and the delivery may be tried again.
    """
    if state is None:
        return HookNotFoundError(token_hash[:8], "no hook has this token")
    hook, run_status = hook_from_row(state[:-1]), state[-1]
    if run_status is None:
        return HookNotFoundError(token_hash[:8], f"its run {hook.run_id} no longer exists")
    if RunStatus(run_status).is_terminal:
        return HookNotFoundError(token_hash[:8], f"its run {hook.run_id} has ended ({run_status})")
    if hook.status is HookStatus.RECEIVED:
        return HookAlreadyReceivedError(hook.run_id, hook.hook_id)
    if hook.status is HookStatus.EXPIRED or (
        hook.expires_at is not None and now >= hook.expires_at
    ):
        return HookExpiredError(hook.run_id, hook.hook_id)
    return None


def hook_not_found(run_id: str, hook_id: str) -> HookNotFoundError:
    """The error of ``expire_hook`` for a hook the run does not have."""
    return HookNotFoundError(hook_id[:8], f"run {run_id} has no hook {hook_id!r}")


def is_own_write(write: AppendWrite, run: RunRecord, stored: list[EventRecord]) -> bool:
    """Whether ``run`` and its ``stored`` events (after the expected seq) are ``write``'s.

    Only the stored run and events can prove that a retried append's first attempt committed:
    the run's seq is where the write would have put it, its lease is as the write left it, and
    the events after the expected seq are the write's own. A seq alone proves nothing: a worker
    that took the run over meanwhile may have logged the same number of events, and the writer
    must then learn that it lost the run, not drive on without its lease.
    """
    keeps_lease = write.lease_expires_at is not None
    if run.lease_owner != (write.owner if keeps_lease else None):
        return False
    if len(stored) != len(write.events):
        return False
    return all(
        s.type is w.type and encode(s.payload) == encode(w.payload)
        for s, w in zip(stored, write.events, strict=True)
    )


def delivered_by_us(state: Sequence[Any], params: Mapping[str, Any]) -> bool:
    """Whether a ``HOOK_STATE`` row shows the delivery that ``params`` describe as done."""
    return bool(
        state[_HOOK_COLUMN["status"]] == HookStatus.RECEIVED.value
        and state[_HOOK_COLUMN["payload"]] == params["b_payload"]
        and state[_HOOK_COLUMN["received_at"]] == params["b_now"]
    )
