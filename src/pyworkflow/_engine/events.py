"""Event types and run statuses: the vocabulary of the event log.

Event names are the ones users of the pyworkflow documentation know. Every payload carries
``"v": EVENT_FORMAT`` so that a later change of a payload's shape can still read old logs.
"""

from __future__ import annotations

import enum

__all__ = [
    "COMMAND_EVENTS",
    "EVENT_FORMAT",
    "OUTCOME_EVENTS",
    "PATCH_KIND",
    "TERMINAL_STATUSES",
    "EventType",
    "HookStatus",
    "RunStatus",
]

EVENT_FORMAT = 1
"""Version of the event payload shapes; bump it with a reader for the old shape."""


PATCH_KIND = "patched"
"""The ``kind`` of the SIDE_EFFECT_RECORDED event that marks a ``patched(change_id)`` call.

Its payload: ``{"v", "kind": "patched", "change_id", "value": true}``. A patch marker is a
recorded decision like ``now()``'s value, so it shares that event type (DESIGN §7) instead of
adding one that older readers would not know.
"""


class EventType(enum.StrEnum):
    """The kinds of event a run's log holds."""

    WORKFLOW_STARTED = "workflow_started"
    WORKFLOW_COMPLETED = "workflow_completed"
    WORKFLOW_FAILED = "workflow_failed"
    WORKFLOW_CANCELLED = "workflow_cancelled"
    WORKFLOW_CONTINUED_AS_NEW = "workflow_continued_as_new"
    WORKFLOW_RESUMED = "workflow_resumed"
    WORKFLOW_INTERRUPTED = "workflow_interrupted"
    """The run was taken over from a worker whose lease lapsed, or handed back mid-step: which
    step attempts were cut short (each runs again as its own, next attempt)."""
    STEP_STARTED = "step_started"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    STEP_RETRYING = "step_retrying"
    SLEEP_STARTED = "sleep_started"
    SLEEP_COMPLETED = "sleep_completed"
    HOOK_CREATED = "hook_created"
    HOOK_RECEIVED = "hook_received"
    HOOK_EXPIRED = "hook_expired"
    CHILD_WORKFLOW_STARTED = "child_workflow_started"
    CHILD_WORKFLOW_COMPLETED = "child_workflow_completed"
    CHILD_WORKFLOW_FAILED = "child_workflow_failed"
    CHILD_WORKFLOW_CANCELLED = "child_workflow_cancelled"
    CHILD_WORKFLOW_CANCEL_REQUESTED = "child_workflow_cancel_requested"
    CANCELLATION_REQUESTED = "cancellation_requested"
    SIDE_EFFECT_RECORDED = "side_effect_recorded"


# Invariant (DESIGN §2.2): replay matches the code's commands against these events, in log order.
# A STEP_STARTED is a command only for attempt 1; later attempts are the executor's bookkeeping.
COMMAND_EVENTS = frozenset(
    {
        EventType.STEP_STARTED,
        EventType.SLEEP_STARTED,
        EventType.SIDE_EFFECT_RECORDED,
        EventType.HOOK_CREATED,
        EventType.CHILD_WORKFLOW_STARTED,
        EventType.CHILD_WORKFLOW_CANCEL_REQUESTED,
    }
)

OUTCOME_EVENTS = frozenset(
    {
        EventType.STEP_COMPLETED,
        EventType.STEP_FAILED,
        EventType.SLEEP_COMPLETED,
        EventType.HOOK_RECEIVED,
        EventType.HOOK_EXPIRED,
        EventType.CHILD_WORKFLOW_COMPLETED,
        EventType.CHILD_WORKFLOW_FAILED,
        EventType.CHILD_WORKFLOW_CANCELLED,
        EventType.CANCELLATION_REQUESTED,
    }
)
"""What happened to a command (a step's end, a timer's, a hook's payload, a child's end), and
a cancel request: replay feeds these to the code one at a time, in log order."""


class HookStatus(enum.StrEnum):
    """Where a hook stands: ``waiting`` for a payload, ``received`` one, or ``expired``."""

    WAITING = "waiting"
    RECEIVED = "received"
    EXPIRED = "expired"


class RunStatus(enum.StrEnum):
    """Where a run stands.

    ``pending``: created, no worker has taken it yet. ``running``: a worker is executing its
    steps. ``suspended``: waiting on a timer (sleep, retry delay), a hook or a child, holding no
    worker once past the executor's horizon. The rest are terminal.
    """

    PENDING = "pending"
    RUNNING = "running"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CONTINUED_AS_NEW = "continued_as_new"

    @property
    def is_terminal(self) -> bool:
        """True once the run has ended and can change no more (except by ``resume``)."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.CONTINUED_AS_NEW}
)
