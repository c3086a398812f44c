"""The public vocabulary of runs: event types, run, hook and schedule statuses.

A leaf module, like ``exceptions``: storage, the CLI, executors, the read model and user code
import these names from here (or from ``pyworkflow``), and none of them needs the engine for
it. Event names are the ones users of the pyworkflow documentation know.
"""

from __future__ import annotations

import enum

__all__ = [
    "LIVE_STATUSES",
    "TERMINAL_STATUSES",
    "EventType",
    "HookStatus",
    "RunStatus",
    "ScheduleStatus",
    "StreamStepStatus",
]


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

LIVE_STATUSES = frozenset(RunStatus) - TERMINAL_STATUSES
"""The statuses of a run that has not ended."""


class ScheduleStatus(enum.StrEnum):
    """Where a schedule stands.

    ``active``: it starts a run at each of its slots. ``paused``: it starts none until resumed
    (the slots that pass meanwhile are not made up). ``deleted``: gone for good; the row stays,
    for the record of the runs it started.
    """

    ACTIVE = "active"
    PAUSED = "paused"
    DELETED = "deleted"


class StreamStepStatus(enum.StrEnum):
    """Where one stream step (a subscription of a stream run) stands.

    ``pending``: subscribed, its first start not yet run. ``waiting``: parked until the next
    matching signal. ``running``: a signal was delivered to it and its execution is under way.
    ``suspended``: it called ``suspend()``; only its ``resume_signals`` reach it. The rest are
    terminal: ``terminated`` (it called ``terminate()``), ``cancelled`` (``ctx.cancel()``),
    ``failed`` (its execution raised after its retries).
    """

    PENDING = "pending"
    WAITING = "waiting"
    RUNNING = "running"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """True once the step will never run again."""
        return self in (
            StreamStepStatus.TERMINATED,
            StreamStepStatus.CANCELLED,
            StreamStepStatus.FAILED,
        )
