"""The storage of stream runs: their records, the StreamStore protocol, the delivery rule.

A stream run (``stream_run_id``) owns four kinds of rows: its own (which stream, which durable
run drives it, its aggregate status, the last signal sequence and the last delivery batch), one
subscription per stream step (its status, its cursor, its result and checkpoint), its signals
(numbered 1, 2, 3 ... per stream run, no gaps) and its deliveries (which signal went to which
subscription in which batch). Nothing is shared between two stream runs, so two of them never
see each other's signals, subscriptions or results.

Rules every backend keeps (tests/contract/test_streams.py checks each):

- ``emit_signal`` numbers signals per stream run in one transaction with the insert, so
  sequence numbers are unique and gap-free under concurrent emitters; a signal with an
  ``idempotency_key`` already used on that stream run is not stored again (its record comes
  back). When the driving run waits on a hook armed with ``arm_stream_wait``, the same
  transaction delivers that hook, so the run wakes.
- ``take_stream_batch(n)`` is idempotent per ``n``: the first call applies the outcomes of batch
  ``n - 1``, picks the deliveries of batch ``n`` (:func:`plan_deliveries`), advances each
  subscription's cursor and stores the deliveries, all in one transaction; any later call for
  the same ``n`` returns those deliveries and writes nothing. Batch ``n`` needs batch ``n - 1``.
  So a signal is delivered to a subscription at most once (its cursor passed it in the
  transaction that recorded the delivery), and a retried or replayed take finds the same batch.
- ``arm_stream_wait`` and ``emit_signal`` serialise on the stream run's row: either the
  signal is stored first (then arming sees ``last_seq`` past what the waiter saw and delivers
  the hook at once) or the arming is (then the emit delivers it). No wake-up is lost.
- A stream run ends ``completed`` (a take found every subscription ended) or, by
  ``end_stream_run`` from its driving run, ``cancelled`` or ``failed``: then every subscription
  that has not ended becomes ``cancelled`` and the waiter is disarmed, in one transaction.
  An ended stream run refuses ``emit_signal`` with StreamRunEndedError, writing nothing
  (a signal with a key already used there still gets its record back).
- Whichever of them delivers the waiter's hook takes the next batch in the same transaction
  (no outcomes: the take before the wait applied them all) and makes it the hook's payload
  (:func:`batch_payload`), so the woken driver runs its deliveries without a take of its own.
  A hook that no longer takes a payload (its timeout passed) gets none and no batch is taken.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pyworkflow.events import StreamStepStatus
from pyworkflow.exceptions import InputError

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
    "StreamStore",
    "SubscriptionOutcome",
    "SubscriptionRecord",
    "SubscriptionSpec",
    "aggregate_status",
    "batch_payload",
    "check_end_status",
    "plan_deliveries",
]

SIGNAL_WINDOW = 1000
"""At most this many signals are read per batch: a lagging subscription costs no re-reading of
the whole stream on every batch (what keeps 100,000 signals linear)."""

_ACTIVE = (StreamStepStatus.WAITING, StreamStepStatus.SUSPENDED)

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


def _matches(subscription: SubscriptionRecord, signal: SignalRecord) -> bool:
    if signal.stream != subscription.stream:
        return False
    if subscription.status is StreamStepStatus.SUSPENDED:
        wanted = subscription.resume_signals or subscription.signal_types
        return signal.signal_type in wanted
    return signal.signal_type in subscription.signal_types


def plan_deliveries(
    subscriptions: Sequence[SubscriptionRecord], signals: Sequence[SignalRecord]
) -> dict[str, tuple[int | None, int]]:
    """The rule of a batch: for each subscription, what it gets and its new cursor.

    ``signals`` are the stream run's signals past the lowest active cursor, in seq order (at
    most :data:`SIGNAL_WINDOW` of them). A ``pending`` subscription gets its start (None) and
    keeps its cursor. A ``waiting`` or ``suspended`` one gets its first matching signal past
    its cursor, and its cursor moves to it; with no match, its cursor moves past every signal
    read (none of them is for it), and it gets nothing. Terminal and ``running`` ones are left
    alone. One delivery per subscription per batch, so each sees its signals one at a time, in
    seq order, with the outcome of the one before applied.

    Returns ``{step_name: (what, new cursor)}`` for every subscription whose row changes:
    ``what`` is the delivered seq, None for a start, or 0 when only the cursor moves.
    """
    plan: dict[str, tuple[int | None, int]] = {}
    last_read = signals[-1].seq if signals else 0
    first = signals[0].seq if signals else 0
    for sub in subscriptions:
        if sub.status is StreamStepStatus.PENDING:
            plan[sub.step_name] = (None, sub.cursor)
            continue
        if sub.status not in _ACTIVE:
            continue
        # The window holds consecutive seqs: start at the cursor, not at the window's start
        # (a scan from the start costs window x subscriptions per batch).
        later = itertools.islice(signals, max(0, sub.cursor - first + 1), None)
        found = next((s for s in later if _matches(sub, s)), None)
        if found is not None:
            plan[sub.step_name] = (found.seq, found.seq)
        elif last_read > sub.cursor:
            plan[sub.step_name] = (0, last_read)
    return plan


def batch_payload(batch: DeliveryBatch, driver: str) -> dict[str, Any]:
    """A taken batch as the driver reads it: plain JSON, encoded values left encoded.

    The payload of the driver's waiting hook when an emit (or the arming) takes the batch,
    and, decoded, the result of the driver's take step: one shape for both. ``driver``: the
    run that drives the stream run. Statuses and results are filled in only once the stream
    run has completed (the driver then ends with them).
    """
    subs = {s.step_name: s for s in batch.subscriptions}
    deliveries = []
    for delivery, signal in batch.deliveries:
        sub = subs[delivery.step_name]
        deliveries.append(
            {
                "step": delivery.step_name,
                # Invariant: a suspended subscription always has a detail (its reason); a
                # waiting one never does. Its status now reads ``running``.
                "before": "pending"
                if signal is None
                else ("suspended" if sub.detail is not None else "waiting"),
                "detail": sub.detail,
                "resume_signals": None if sub.resume_signals is None else list(sub.resume_signals),
                "checkpoint": sub.checkpoint,
                "signal": None
                if signal is None
                else {
                    "signal_id": signal.signal_id,
                    "stream": signal.stream,
                    "signal_type": signal.signal_type,
                    "payload": signal.payload,
                    "emitted_at": signal.emitted_at,
                    "seq": signal.seq,
                    "source_run_id": signal.source_run_id,
                    "stream_run_id": signal.stream_run_id,
                },
            }
        )
    ended = batch.status == "completed"
    return {
        "driver": driver,
        "batch": batch.batch,
        "status": batch.status,
        "last_seq": batch.last_seq,
        "deliveries": deliveries,
        "states": {s.step_name: s.status.value for s in batch.subscriptions} if ended else {},
        "results": {s.step_name: s.result for s in batch.subscriptions if s.has_result}
        if ended
        else {},
    }


def aggregate_status(statuses: Sequence[StreamStepStatus]) -> str:
    """A stream run's aggregate status, from its steps' statuses.

    ``completed`` when every step is terminal, ``suspended`` when one is suspended and none
    can run without a resume signal, ``running`` otherwise.
    """
    if all(s.is_terminal for s in statuses):
        return "completed"
    if StreamStepStatus.SUSPENDED in statuses and not any(
        s in (StreamStepStatus.PENDING, StreamStepStatus.WAITING, StreamStepStatus.RUNNING)
        for s in statuses
    ):
        return "suspended"
    return "running"


def check_end_status(status: str) -> None:
    """Raise InputError naming ``status`` unless ``end_stream_run`` gives it.

    A stream run completes only by its steps' ends, never by decree.
    """
    if status not in END_STATUSES:
        raise InputError(f"a stream run ends {' or '.join(END_STATUSES)}, not {status!r}")


@runtime_checkable
class StreamStore(Protocol):
    """What stream runs need from a storage, besides ``Storage`` (memory, SQLite, PostgreSQL).

    See the module docstring for the rules.
    """

    async def open_stream_run(
        self,
        stream_run_id: str,
        *,
        stream: str,
        run_id: str,
        subscriptions: Sequence[SubscriptionSpec],
        now: float,
    ) -> tuple[StreamRunRecord, bool]:
        """Create the stream run and its ``pending`` subscriptions; True if created now.

        An existing one of the same stream and driving run comes back with False (a retried
        open). Raises StreamRunConflictError, writing nothing, when the id is taken by
        another stream or another driving run.
        """

    async def get_stream_run(self, stream_run_id: str) -> StreamRunRecord | None:
        """The stream run, or None."""

    async def adopt_stream_run(
        self, stream_run_id: str, *, previous_run_id: str, run_id: str, now: float
    ) -> bool:
        """Hand the stream run from its driving run to the run that continued it.

        True when ``run_id`` drives it now (also when it already did); False, writing
        nothing, when another run than ``previous_run_id`` drives it. Raises
        StreamRunNotFoundError for an unknown stream run.
        """

    async def list_stream_runs(
        self, *, stream: str | None = None, limit: int = 100
    ) -> list[StreamRunRecord]:
        """Stream runs newest first, of one stream or all."""

    async def list_subscriptions(self, stream_run_id: str) -> list[SubscriptionRecord]:
        """The stream run's subscriptions, by step name."""

    async def list_signals(
        self, stream_run_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[SignalRecord]:
        """The stream run's signals with ``seq > after_seq``, in seq order."""

    async def list_deliveries(self, stream_run_id: str) -> list[DeliveryRecord]:
        """Every delivery of the stream run, by batch then step name (starts included)."""

    async def emit_signal(self, signal: NewSignal) -> SignalRecord:
        """Store a signal at the stream run's next seq and wake its driver; see the rules.

        Raises StreamRunNotFoundError for an unknown stream run, and StreamRunEndedError for
        one that has ended, writing nothing.
        """

    async def arm_stream_wait(
        self, stream_run_id: str, *, token_hash: str, seen_seq: int, now: float
    ) -> bool:
        """Let the next signal deliver the waiting hook ``token_hash``.

        True when one came already (``last_seq > seen_seq``): then the hook is delivered now.
        """

    async def take_stream_batch(
        self,
        stream_run_id: str,
        *,
        batch: int,
        outcomes: Sequence[SubscriptionOutcome],
        now: float,
    ) -> DeliveryBatch:
        """Apply ``outcomes`` (of batch ``batch - 1``) and take batch ``batch``; idempotent.

        Raises StreamRunNotFoundError for an unknown stream run, and StorageError when
        ``batch`` is neither the last batch nor the next.
        """

    async def end_stream_run(
        self, stream_run_id: str, *, run_id: str, status: str, detail: str, now: float
    ) -> bool:
        """End the stream run that ``run_id`` drives: ``status`` is ``cancelled`` or ``failed``.

        Its status becomes ``status``; every subscription that has not ended becomes
        ``cancelled`` with ``detail`` (the reason); its waiter is disarmed; from then on
        ``emit_signal`` refuses it. True when ended now; False, writing nothing, for an
        unknown stream run, one another run drives, or one that has ended already. Raises
        InputError, writing nothing, for another ``status``.
        """
