"""The stream runs of MemoryStorage: the reference semantics of ``storage/streams.py``.

Each method validates first and then mutates, never awaiting in between except to deliver the
waiting hook (itself all-or-nothing) and take the batch it carries (which does not suspend),
so a method is one transaction here.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyworkflow.events import StreamStepStatus
from pyworkflow.exceptions import (
    HookAlreadyReceivedError,
    HookExpiredError,
    HookNotFoundError,
    StorageError,
    StreamRunConflictError,
    StreamRunEndedError,
    StreamRunNotFoundError,
)

if TYPE_CHECKING:
    from pyworkflow.storage.memory._hooks import HookTable
    from pyworkflow.storage.records import HookRecord
from pyworkflow.storage.streams import (
    ENDED_STATUSES,
    SIGNAL_WINDOW,
    DeliveryBatch,
    DeliveryRecord,
    NewSignal,
    SignalRecord,
    StreamRunRecord,
    SubscriptionOutcome,
    SubscriptionRecord,
    SubscriptionSpec,
    aggregate_status,
    batch_payload,
    check_end_status,
    plan_deliveries,
)

__all__ = ["MemoryStreamMethods"]


class _StreamRows:
    """Everything one stream run owns."""

    def __init__(self, record: StreamRunRecord) -> None:
        self.record = record
        self.subscriptions: dict[str, SubscriptionRecord] = {}
        self.signals: list[SignalRecord] = []
        self.keys: dict[str, SignalRecord] = {}
        self.deliveries: dict[int, list[DeliveryRecord]] = {}
        self.wait_hook: str | None = None


class MemoryStreamMethods:
    """The StreamStore methods of MemoryStorage (mixed into it)."""

    _streams: dict[str, _StreamRows]
    _hooks: HookTable

    if TYPE_CHECKING:  # MemoryStorage's

        async def deliver_hook(self, token_hash: str, payload: Any, *, now: float) -> HookRecord:
            """Deliver a hook's payload (``Storage.deliver_hook``)."""

    def _rows(self, stream_run_id: str) -> _StreamRows:
        rows = self._streams.get(stream_run_id)
        if rows is None:
            raise StreamRunNotFoundError(stream_run_id)
        return rows

    async def open_stream_run(
        self,
        stream_run_id: str,
        *,
        stream: str,
        run_id: str,
        subscriptions: Sequence[SubscriptionSpec],
        now: float,
    ) -> tuple[StreamRunRecord, bool]:
        """Create the stream run and its pending subscriptions; see ``StreamStore``."""
        existing = self._streams.get(stream_run_id)
        if existing is not None:
            record = existing.record
            if record.stream != stream or record.run_id != run_id:
                raise StreamRunConflictError(
                    stream_run_id, f"stream {record.stream!r}, driven by run {record.run_id!r}"
                )
            return record, False
        record = StreamRunRecord(stream_run_id, stream, run_id, "running", 0, 0, now, now)
        rows = _StreamRows(record)
        for spec in subscriptions:
            rows.subscriptions[spec.step_name] = SubscriptionRecord(
                stream_run_id=stream_run_id,
                step_name=spec.step_name,
                stream=spec.stream,
                signal_types=tuple(spec.signal_types),
                status=StreamStepStatus.PENDING,
                cursor=0,
                result=None,
                has_result=False,
                checkpoint=None,
                detail=None,
                resume_signals=None,
                deliveries=0,
                updated_at=now,
            )
        self._streams[stream_run_id] = rows
        return record, True

    async def adopt_stream_run(
        self, stream_run_id: str, *, previous_run_id: str, run_id: str, now: float
    ) -> bool:
        """Hand the stream run to the run that continued its driver; see ``StreamStore``."""
        rows = self._rows(stream_run_id)
        if rows.record.run_id == run_id:
            return True
        if rows.record.run_id != previous_run_id:
            return False
        rows.record = dataclasses.replace(rows.record, run_id=run_id, updated_at=now)
        return True

    async def get_stream_run(self, stream_run_id: str) -> StreamRunRecord | None:
        """The stream run, or None."""
        rows = self._streams.get(stream_run_id)
        return None if rows is None else rows.record

    async def list_stream_runs(
        self, *, stream: str | None = None, limit: int = 100
    ) -> list[StreamRunRecord]:
        """Stream runs newest first (ties: id descending), of one stream or all."""
        records = [r.record for r in self._streams.values() if stream in (None, r.record.stream)]
        records.sort(key=lambda r: (r.created_at, r.stream_run_id), reverse=True)
        return records[: max(limit, 0)]

    async def list_subscriptions(self, stream_run_id: str) -> list[SubscriptionRecord]:
        """The stream run's subscriptions by step name (none for an unknown stream run)."""
        rows = self._streams.get(stream_run_id)
        if rows is None:
            return []
        return [copy.deepcopy(rows.subscriptions[n]) for n in sorted(rows.subscriptions)]

    async def list_signals(
        self, stream_run_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[SignalRecord]:
        """Signals with ``seq > after_seq`` in seq order."""
        rows = self._streams.get(stream_run_id)
        if rows is None or limit <= 0:
            return []
        # seq n sits at index n - 1: no gaps
        return copy.deepcopy(rows.signals[after_seq : after_seq + limit])

    async def list_deliveries(self, stream_run_id: str) -> list[DeliveryRecord]:
        """Every delivery, by batch then step name."""
        rows = self._streams.get(stream_run_id)
        if rows is None:
            return []
        return [d for b in sorted(rows.deliveries) for d in rows.deliveries[b]]

    async def emit_signal(self, signal: NewSignal) -> SignalRecord:
        """Store ``signal`` at the next seq and deliver the armed hook; see ``StreamStore``."""
        rows = self._rows(signal.stream_run_id)
        key = signal.idempotency_key
        if key is not None and key in rows.keys:
            return copy.deepcopy(rows.keys[key])
        if rows.record.status in ENDED_STATUSES:
            raise StreamRunEndedError(signal.stream_run_id, rows.record.status)
        seq = rows.record.last_seq + 1
        record = SignalRecord(
            stream_run_id=signal.stream_run_id,
            seq=seq,
            signal_id=signal.signal_id,
            stream=signal.stream,
            signal_type=signal.signal_type,
            payload=copy.deepcopy(signal.payload),
            emitted_at=signal.now,
            source_run_id=signal.source_run_id,
            idempotency_key=key,
        )
        rows.signals.append(record)
        if key is not None:
            rows.keys[key] = record
        rows.record = dataclasses.replace(rows.record, last_seq=seq, updated_at=signal.now)
        waiter, rows.wait_hook = rows.wait_hook, None
        woke = waiter is not None and await self._wake_waiter(rows, waiter, seq, signal.now)
        driver = rows.record.run_id if woke else None
        return dataclasses.replace(copy.deepcopy(record), woke=woke, driver=driver)

    async def arm_stream_wait(
        self, stream_run_id: str, *, token_hash: str, seen_seq: int, now: float
    ) -> bool:
        """Arm the waiting hook, or deliver it now if a signal came after ``seen_seq``."""
        rows = self._rows(stream_run_id)
        if rows.record.last_seq > seen_seq:
            rows.wait_hook = None
            await self._wake_waiter(rows, token_hash, rows.record.last_seq, now)
            return True
        rows.wait_hook = token_hash
        return False

    async def end_stream_run(
        self, stream_run_id: str, *, run_id: str, status: str, detail: str, now: float
    ) -> bool:
        """End the stream run ``run_id`` drives, cancelled or failed; see ``StreamStore``."""
        check_end_status(status)
        rows = self._streams.get(stream_run_id)
        if rows is None or rows.record.run_id != run_id or rows.record.status in ENDED_STATUSES:
            return False
        for name, sub in rows.subscriptions.items():
            if not sub.status.is_terminal:
                rows.subscriptions[name] = dataclasses.replace(
                    sub,
                    status=StreamStepStatus.CANCELLED,
                    detail=detail,
                    resume_signals=None,
                    updated_at=now,
                )
        rows.wait_hook = None
        rows.record = dataclasses.replace(rows.record, status=status, updated_at=now)
        return True

    async def _wake_waiter(self, rows: _StreamRows, token_hash: str, seq: int, now: float) -> bool:
        """Deliver the waiter's hook with the next batch, taken now, as its payload."""
        try:
            await self.deliver_hook(token_hash, seq, now=now)
        except (HookNotFoundError, HookAlreadyReceivedError, HookExpiredError):
            return False  # the waiter woke otherwise (its timeout) or its run ended: no batch
        # Nothing runs between these writes (no await suspends here): as one transaction.
        batch = rows.record.last_batch + 1
        taken = await self.take_stream_batch(
            rows.record.stream_run_id, batch=batch, outcomes=(), now=now
        )
        self._hooks.set_payload(token_hash, batch_payload(taken, rows.record.run_id))
        return True

    async def take_stream_batch(
        self,
        stream_run_id: str,
        *,
        batch: int,
        outcomes: Sequence[SubscriptionOutcome],
        now: float,
    ) -> DeliveryBatch:
        """Apply ``outcomes`` and take batch ``batch``, or return it if taken; see the rules."""
        rows = self._rows(stream_run_id)
        last = rows.record.last_batch
        if batch == last and batch > 0:
            return self._batch(rows, batch)
        if batch != last + 1:
            raise StorageError(
                f"stream run {stream_run_id!r} is at batch {last}; batch {batch} cannot be taken"
            )
        subs = rows.subscriptions
        for outcome in outcomes:
            if outcome.step_name in subs:
                subs[outcome.step_name] = applied(subs[outcome.step_name], outcome, now)
            if outcome.refused:
                rows.deliveries[batch - 1] = [
                    dataclasses.replace(d, refused=True) if d.step_name == outcome.step_name else d
                    for d in rows.deliveries.get(batch - 1, [])
                ]
        low = min(
            (s.cursor for s in subs.values() if s.status in _CURSOR_STATUSES),
            default=rows.record.last_seq,
        )
        window = rows.signals[low : low + SIGNAL_WINDOW]
        plan = plan_deliveries([subs[n] for n in sorted(subs)], window)
        taken: list[DeliveryRecord] = []
        for name, (what, cursor) in sorted(plan.items()):
            sub = dataclasses.replace(subs[name], cursor=cursor, updated_at=now)
            if what != 0:
                taken.append(DeliveryRecord(stream_run_id, batch, name, what))
                sub = dataclasses.replace(
                    sub, status=StreamStepStatus.RUNNING, deliveries=sub.deliveries + 1
                )
            subs[name] = sub
        rows.deliveries[batch] = taken
        status = aggregate_status([s.status for s in subs.values()])
        rows.record = dataclasses.replace(
            rows.record, last_batch=batch, status=status, updated_at=now
        )
        return self._batch(rows, batch)

    def _batch(self, rows: _StreamRows, batch: int) -> DeliveryBatch:
        deliveries = [
            (d, None if d.seq is None else copy.deepcopy(rows.signals[d.seq - 1]))
            for d in rows.deliveries.get(batch, [])
        ]
        subs = [copy.deepcopy(rows.subscriptions[n]) for n in sorted(rows.subscriptions)]
        return DeliveryBatch(batch, deliveries, subs, rows.record.last_seq, rows.record.status)


_CURSOR_STATUSES = (StreamStepStatus.WAITING, StreamStepStatus.SUSPENDED)


def applied(
    sub: SubscriptionRecord, outcome: SubscriptionOutcome, now: float
) -> SubscriptionRecord:
    """``sub`` with one execution's outcome applied (the rule every backend writes)."""
    return dataclasses.replace(
        sub,
        status=outcome.status,
        detail=outcome.detail,
        resume_signals=outcome.resume_signals,
        result=copy.deepcopy(outcome.result) if outcome.set_result else sub.result,
        has_result=sub.has_result or outcome.set_result,
        checkpoint=copy.deepcopy(outcome.checkpoint) if outcome.set_checkpoint else sub.checkpoint,
        updated_at=now,
        refused=sub.refused + int(outcome.refused),
    )
