"""The delivery rule of stream runs, and what follows from a stream run's statuses.

Pure functions over the records of ``_stream_records``, so that every backend picks the same
deliveries and reports the same status; ``pyworkflow.storage.streams`` states the rules.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from pyworkflow.events import StreamStepStatus
from pyworkflow.exceptions import InputError
from pyworkflow.storage._stream_records import (
    END_STATUSES,
    DeliveryBatch,
    SignalRecord,
    SubscriptionRecord,
)

__all__ = [
    "aggregate_status",
    "batch_payload",
    "check_end_status",
    "plan_deliveries",
]

_ACTIVE = (StreamStepStatus.WAITING, StreamStepStatus.SUSPENDED)


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
