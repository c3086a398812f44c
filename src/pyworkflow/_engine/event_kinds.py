"""How the engine reads its own log: the payload format version and which events are what.

The event types themselves are public (``pyworkflow.events``). Every payload carries
``"v": EVENT_FORMAT`` so that a later change of a payload's shape can still read old logs;
replay matches commands against ``COMMAND_EVENTS`` and feeds back ``OUTCOME_EVENTS``.
"""

from __future__ import annotations

from pyworkflow.events import EventType

__all__ = ["COMMAND_EVENTS", "EVENT_FORMAT", "OUTCOME_EVENTS", "PATCH_KIND"]

EVENT_FORMAT = 1
"""Version of the event payload shapes; bump it with a reader for the old shape."""


PATCH_KIND = "patched"
"""The ``kind`` of the SIDE_EFFECT_RECORDED event that marks a ``patched(change_id)`` call.

Its payload: ``{"v", "kind": "patched", "change_id", "value": true}``. A patch marker is a
recorded decision like ``now()``'s value, so it shares that event type (DESIGN §7) instead of
adding one that older readers would not know.
"""


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
