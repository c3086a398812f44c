"""The storage of stream runs: their records, the StreamStore protocol, the delivery rule.

A stream run (``stream_run_id``) owns four kinds of rows: its own (which stream, which durable
run drives it, its aggregate status, the last signal sequence and the last delivery batch), one
subscription per stream step (its status, its cursor, its result and checkpoint), its signals
(numbered 1, 2, 3 ... per stream run, no gaps) and its deliveries (which signal went to which
subscription in which batch). Nothing is shared between two stream runs, so two of them never
see each other's signals, subscriptions or results.

The records live in ``_stream_records`` and the delivery rule in ``_stream_rules``; this module
is their public home and holds the protocol.

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

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pyworkflow.storage._stream_records import (
    END_STATUSES,
    ENDED_STATUSES,
    SIGNAL_WINDOW,
    DeliveryBatch,
    DeliveryRecord,
    NewSignal,
    SignalRecord,
    StreamRunRecord,
    StreamSnapshot,
    SubscriptionOutcome,
    SubscriptionRecord,
    SubscriptionSpec,
)
from pyworkflow.storage._stream_rules import (
    aggregate_status,
    batch_payload,
    check_end_status,
    plan_deliveries,
)

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
