"""The records of stream runs: what ``StreamStore`` takes and returns, and their statuses.

Plain frozen dataclasses shared by every backend, the driver and the read model. Their public
home is ``pyworkflow.storage.streams``, where the rules they keep are written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyworkflow.events import StreamStepStatus

__all__ = [
    "ENDED_STATUSES",
    "END_STATUSES",
    "SIGNAL_WINDOW",
    "DeliveryBatch",
    "DeliveryRecord",
    "NewSignal",
    "SignalRecord",
    "StreamRunRecord",
    "StreamSnapshot",
    "SubscriptionOutcome",
    "SubscriptionRecord",
    "SubscriptionSpec",
]

SIGNAL_WINDOW = 1000
"""At most this many signals are read per batch: a lagging subscription costs no re-reading of
the whole stream on every batch (what keeps 100,000 signals linear)."""

END_STATUSES = ("cancelled", "failed")
"""The statuses ``end_stream_run`` gives a stream run (its driving run was cancelled, failed)."""
ENDED_STATUSES = ("completed", *END_STATUSES)
"""The statuses of a stream run that has ended: it takes no more signals."""


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """A stream step as a stream run subscribes it: its name, its stream, its signal types."""

    step_name: str
    stream: str
    signal_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StreamRunRecord:
    """A stream run's own row.

    Attributes:
        stream_run_id: the scope key.
        stream: the stream workflow's name (its channel).
        run_id: the durable run that drives it.
        status: its aggregate, ``running``, ``suspended`` or ``completed``; or
            ``cancelled`` / ``failed`` when its driving run was cancelled or failed.
        last_seq: the sequence of its last signal (0: none yet).
        last_batch: the number of its last delivery batch (0: none yet).
        created_at / updated_at: when it was opened, last written.
    """

    stream_run_id: str
    stream: str
    run_id: str
    status: str
    last_seq: int
    last_batch: int
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """One stream step of a stream run.

    Attributes:
        cursor: the sequence up to which signals were looked at for it (delivered or passed).
        result: its ``set_result`` value (encoded), meaningful when ``has_result``.
        checkpoint: its last ``save_checkpoint`` value (encoded), or None.
        detail: the reason of a suspension or cancellation, or the error of a failure.
        resume_signals: while suspended, the signal types that reach it (None: its own).
        deliveries: how many deliveries (its start included) it received.
        refused: how many of them were refused (a payload failing the step's schema).
    """

    stream_run_id: str
    step_name: str
    stream: str
    signal_types: tuple[str, ...]
    status: StreamStepStatus
    cursor: int
    result: Any
    has_result: bool
    checkpoint: Any
    detail: str | None
    resume_signals: tuple[str, ...] | None
    deliveries: int
    updated_at: float
    refused: int = 0
    """Deliveries whose payload failed its schema here: the step was not run for them."""


@dataclass(frozen=True, slots=True)
class NewSignal:
    """A signal to store; ``payload`` is encoded already."""

    stream_run_id: str
    stream: str
    signal_type: str
    payload: Any
    signal_id: str
    now: float
    source_run_id: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """A stored signal: ``seq`` is its place in its stream run (1, 2, 3 ...)."""

    stream_run_id: str
    seq: int
    signal_id: str
    stream: str
    signal_type: str
    payload: Any
    emitted_at: float
    source_run_id: str | None
    idempotency_key: str | None
    woke: bool = field(default=False, compare=False)
    """Set by ``emit_signal`` only: this emit delivered the driver's waiting hook (the driver
    was idle, so its process should look now); not stored."""
    driver: str | None = field(default=None, compare=False)
    """Set with ``woke``: the run that drives the stream run (the one to wake); not stored."""


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """Batch ``batch`` gave subscription ``step_name`` signal ``seq`` (None: its start).

    ``refused``: its payload failed the step's schema, so the step was not run for it.
    """

    stream_run_id: str
    batch: int
    step_name: str
    seq: int | None
    refused: bool = False


@dataclass(frozen=True, slots=True)
class SubscriptionOutcome:
    """What one delivery's execution decided for its subscription (applied by the next take).

    ``result`` and ``checkpoint`` are encoded; ``set_result`` / ``set_checkpoint`` say whether
    to store them (a value of None is a value). ``refused``: the delivery was refused (its
    payload failed the step's schema): counted on the subscription and marked on the delivery.
    """

    step_name: str
    status: StreamStepStatus
    detail: str | None = None
    resume_signals: tuple[str, ...] | None = None
    result: Any = None
    set_result: bool = False
    checkpoint: Any = None
    set_checkpoint: bool = False
    refused: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryBatch:
    """A batch of deliveries, each with its signal (None for a start).

    ``subscriptions`` are as they stood once it was taken (the delivered ones ``running``);
    ``last_seq`` and ``status`` are the stream run's then.
    """

    batch: int
    deliveries: list[tuple[DeliveryRecord, SignalRecord | None]]
    subscriptions: list[SubscriptionRecord]
    last_seq: int
    status: str = field(default="running")


@dataclass(frozen=True, slots=True)
class StreamSnapshot:
    """One stream run whole: the rows a run that drives it carries when it moves or goes.

    Part of ``RunSnapshot`` (its ``streams``): a stream run belongs to the run that drives it
    (``record.run_id``), so copying that run copies it, and deleting that run (retention)
    deletes it. A snapshot that a storage stores reads back equal.

    Attributes:
        record: the stream run's row.
        subscriptions: its subscriptions, by step name.
        signals: its signals, in seq order.
        deliveries: its deliveries, by batch then step name.
        wait_hook: the token hash of the hook its driver waits on (``arm_stream_wait``), so
            the next signal on the copy still wakes the driver; None when none is armed.
    """

    record: StreamRunRecord
    subscriptions: tuple[SubscriptionRecord, ...] = ()
    signals: tuple[SignalRecord, ...] = ()
    deliveries: tuple[DeliveryRecord, ...] = ()
    wait_hook: str | None = None


# Their type paths name their public home (reprs, pickles, type hints a user reads).
for _name in __all__:
    if isinstance(globals()[_name], type):
        globals()[_name].__module__ = "pyworkflow.storage.streams"
