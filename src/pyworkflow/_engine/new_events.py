"""The events the engine writes, each built in one place.

Their payload shapes are the log format that running workflows and golden histories depend on:
change one only together with ``EVENT_FORMAT`` and a reader for the old shape.
"""

from __future__ import annotations

from typing import Any

from pyworkflow._engine.event_kinds import EVENT_FORMAT, PATCH_KIND
from pyworkflow.events import EventType, RunStatus
from pyworkflow.storage.records import NewEvent

__all__ = [
    "cancellation_requested",
    "child_cancel_requested",
    "child_ended",
    "child_started",
    "hook_created",
    "hook_expired",
    "hook_received",
    "patch_marker",
    "side_effect_recorded",
    "sleep_completed",
    "sleep_started",
    "step_completed",
    "step_failed",
    "step_retrying",
    "step_started",
    "workflow_ended",
    "workflow_interrupted",
]


def _event(type_: EventType, /, **payload: Any) -> NewEvent:
    return NewEvent(type_, {"v": EVENT_FORMAT, **payload})


def step_started(step_id: str, name: str, attempt: int, args: Any = None) -> NewEvent:
    """An attempt of a step begins; attempt 1 (with the encoded arguments) is the command."""
    return _event(EventType.STEP_STARTED, step_id=step_id, name=name, attempt=attempt, args=args)


def step_completed(step_id: str, result: Any) -> NewEvent:
    """A step's encoded result."""
    return _event(EventType.STEP_COMPLETED, step_id=step_id, result=result)


def step_retrying(
    step_id: str, attempt: int, error: dict[str, Any], retry_at: float, retry_in: float
) -> NewEvent:
    """An attempt failed; the next starts at ``retry_at`` (a durable timer).

    ``retry_in`` is the delay chosen, kept as chosen: the event's own timestamp is taken
    later, at its commit, so the two differ by the time the commit took.
    """
    return _event(
        EventType.STEP_RETRYING,
        step_id=step_id,
        attempt=attempt,
        error=error,
        retry_at=retry_at,
        retry_in=retry_in,
    )


def step_failed(step_id: str, error: dict[str, Any]) -> NewEvent:
    """A step failed for good; the workflow sees the error."""
    return _event(EventType.STEP_FAILED, step_id=step_id, error=error)


def sleep_started(sleep_id: str, wake_at: float) -> NewEvent:
    """A durable timer, with its absolute wake time."""
    return _event(EventType.SLEEP_STARTED, sleep_id=sleep_id, wake_at=wake_at)


def sleep_completed(sleep_id: str) -> NewEvent:
    """A durable timer came due."""
    return _event(EventType.SLEEP_COMPLETED, sleep_id=sleep_id)


def side_effect_recorded(kind: str, value: Any) -> NewEvent:
    """The encoded value of ``now()``, ``uuid4()`` or ``random()``."""
    return _event(EventType.SIDE_EFFECT_RECORDED, kind=kind, value=value)


def patch_marker(change_id: str) -> NewEvent:
    """``patched(change_id)`` ran under code that has the change (see ``PATCH_KIND``).

    ``value`` is always True, so a reader that only knows side effects sees a recorded bool.
    """
    return _event(EventType.SIDE_EFFECT_RECORDED, kind=PATCH_KIND, change_id=change_id, value=True)


def cancellation_requested(reason: str | None) -> NewEvent:
    """The lease holder saw a cancel request."""
    return _event(EventType.CANCELLATION_REQUESTED, reason=reason)


def hook_created(
    hook_id: str, name: str, nonce: str, expires_at: float | None, payload_type: str | None
) -> NewEvent:
    """A hook now waits; ``nonce`` re-derives its token on replay (never the token itself)."""
    return _event(
        EventType.HOOK_CREATED,
        hook_id=hook_id,
        name=name,
        nonce=nonce,
        expires_at=expires_at,
        payload_type=payload_type,
    )


def hook_received(hook_id: str, payload: Any) -> NewEvent:
    """A hook's encoded payload, delivered by ``resume_hook``."""
    return _event(EventType.HOOK_RECEIVED, hook_id=hook_id, payload=payload)


def hook_expired(hook_id: str) -> NewEvent:
    """A hook's timeout passed before a payload arrived."""
    return _event(EventType.HOOK_EXPIRED, hook_id=hook_id)


def child_started(
    child_id: str, workflow: str, child_run_id: str, *, wait: bool, policy: str
) -> NewEvent:
    """A child run was created (in the same transaction as this event)."""
    return _event(
        EventType.CHILD_WORKFLOW_STARTED,
        child_id=child_id,
        name=workflow,
        child_run_id=child_run_id,
        wait=wait,
        parent_close_policy=policy,
    )


def child_cancel_requested(
    cancel_id: str, child_id: str, workflow: str, child_run_id: str, reason: str | None
) -> NewEvent:
    """Workflow code cancelled its child ``child_id`` through the handle (a command).

    The driver makes the request on the child's row once this is committed (DESIGN §7).
    """
    return _event(
        EventType.CHILD_WORKFLOW_CANCEL_REQUESTED,
        cancel_id=cancel_id,
        child_id=child_id,
        name=workflow,
        child_run_id=child_run_id,
        reason=reason,
    )


def child_ended(
    child_id: str, child_run_id: str, status: RunStatus, *, result: Any, error: Any, reason: Any
) -> NewEvent:
    """A child run (the last of its continue-as-new chain) ended."""
    if status is RunStatus.COMPLETED:
        return _event(
            EventType.CHILD_WORKFLOW_COMPLETED,
            child_id=child_id,
            child_run_id=child_run_id,
            result=result,
        )
    if status is RunStatus.FAILED:
        failed = EventType.CHILD_WORKFLOW_FAILED
        return _event(failed, child_id=child_id, child_run_id=child_run_id, error=error)
    return _event(
        EventType.CHILD_WORKFLOW_CANCELLED,
        child_id=child_id,
        child_run_id=child_run_id,
        reason=reason,
    )


def workflow_interrupted(
    owner: str | None, recovery: int, steps: list[tuple[str, int]], reason: str
) -> NewEvent:
    """A driver took the run on after its previous one stopped without logging everything.

    Args:
        owner: the lease owner whose lease lapsed (its process died or stalled), or None.
        recovery: the run's take-overs in a row without progress, this one included.
        steps: ``(step_id, attempt)`` of each attempt that was cut short; each runs again (or
            ran again, on a Celery worker) as the step's next attempt, logged right after.
        reason: ``"lease lapsed"`` (taken over from ``owner``), ``"handed back"`` (a clean
            stop with a step still running) or ``"redelivered"`` (a Celery step task whose
            worker died; the broker delivered the attempt again).
    """
    return _event(
        EventType.WORKFLOW_INTERRUPTED,
        owner=owner,
        recovery=recovery,
        steps=[{"step_id": step_id, "attempt": attempt} for step_id, attempt in steps],
        reason=reason,
    )


def workflow_ended(
    *,
    cancelled: bool,
    error: dict[str, Any] | None,
    result: Any,
    reason: str | None,
    continued_to: str | None = None,
) -> tuple[RunStatus, NewEvent]:
    """The run's terminal status and the event that records it."""
    if continued_to is not None:
        return RunStatus.CONTINUED_AS_NEW, _event(
            EventType.WORKFLOW_CONTINUED_AS_NEW, new_run_id=continued_to
        )
    if cancelled:
        return RunStatus.CANCELLED, _event(EventType.WORKFLOW_CANCELLED, reason=reason)
    if error is not None:
        return RunStatus.FAILED, _event(EventType.WORKFLOW_FAILED, error=error)
    return RunStatus.COMPLETED, _event(EventType.WORKFLOW_COMPLETED, result=result)
