"""The scripts of stream runs: open, emit, arm the waiter, take a batch, and the reads.

The writing scripts run in one transaction each (``SqlStorage._run_atomic``) and begin with an
UPDATE of the stream run's row, so the writes to one stream run take turns (see
``_statements/streams.py``). What a batch delivers is decided by ``plan_deliveries``, the rule
the memory storage applies too.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from pyworkflow._json_text import encode
from pyworkflow.events import StreamStepStatus
from pyworkflow.exceptions import (
    StorageError,
    StreamRunConflictError,
    StreamRunEndedError,
    StreamRunNotFoundError,
)
from pyworkflow.storage.sql._session import Row, Session
from pyworkflow.storage.sql._statements.streams import (
    ADOPT,
    ADVANCE_BATCH,
    ARM_WAIT,
    BATCH_DELIVERIES,
    CLEAR_WAIT,
    DELIVERY_REFUSED,
    GET_STREAM_RUN,
    INSERT_DELIVERY,
    INSERT_SIGNAL,
    INSERT_SUBSCRIPTION,
    LIST_DELIVERIES,
    LIST_SIGNALS,
    LIST_SUBSCRIPTIONS,
    LOCK_STREAM_RUN,
    MOVE_CURSOR,
    NEXT_SEQ,
    OUTCOME_CHECKPOINT,
    OUTCOME_REFUSED,
    OUTCOME_RESULT,
    OUTCOME_STATUS,
    SIGNAL_BY_KEY,
    STREAM_STATUS,
    WAKE_PAYLOAD,
    insert_stream_run,
    list_stream_runs_statement,
)
from pyworkflow.storage.sql.schema import stream_deliveries, stream_signals
from pyworkflow.storage.streams import (
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
    plan_deliveries,
)

__all__ = [
    "adopt_stream_run",
    "arm_stream_wait",
    "emit_signal",
    "get_stream_run",
    "list_deliveries",
    "list_signals",
    "list_stream_runs",
    "list_subscriptions",
    "open_stream_run",
    "take_stream_batch",
]

_SIGNAL_COLUMNS = len(stream_signals.c)
_DELIVERY_COLUMNS = len(stream_deliveries.c)


def _bound(row: dict[str, Any]) -> dict[str, Any]:
    """A row keyed by column as the parameters of an INSERT of ``_statements/streams.py``."""
    return {f"b_{name}": value for name, value in row.items()}


def _json(text: Any) -> Any:
    return None if text is None else json.loads(text)


def _stream_run(row: Row) -> StreamRunRecord:
    return StreamRunRecord(
        stream_run_id=row[0],
        stream=row[1],
        run_id=row[2],
        status=row[3],
        last_seq=row[4],
        last_batch=row[5],
        created_at=row[7],
        updated_at=row[8],
    )


def _subscription(row: Row) -> SubscriptionRecord:
    resume = _json(row[10])
    return SubscriptionRecord(
        stream_run_id=row[0],
        step_name=row[1],
        stream=row[2],
        signal_types=tuple(json.loads(row[3])),
        status=StreamStepStatus(row[4]),
        cursor=row[5],
        result=_json(row[6]),
        has_result=bool(row[7]),
        checkpoint=_json(row[8]),
        detail=row[9],
        resume_signals=None if resume is None else tuple(resume),
        deliveries=row[11],
        updated_at=row[12],
        refused=row[13],
    )


def _signal(row: Row) -> SignalRecord:
    return SignalRecord(
        stream_run_id=row[0],
        seq=row[1],
        signal_id=row[2],
        stream=row[3],
        signal_type=row[4],
        payload=json.loads(row[5]),
        emitted_at=row[6],
        source_run_id=row[7],
        idempotency_key=row[8],
    )


async def get_stream_run(db: Session, stream_run_id: str) -> StreamRunRecord | None:
    """The stream run, or None."""
    row = await db.first(GET_STREAM_RUN, {"b_stream_run_id": stream_run_id})
    return None if row is None else _stream_run(row)


async def adopt_stream_run(
    db: Session, stream_run_id: str, *, previous_run_id: str, run_id: str, now: float
) -> bool:
    """Hand the stream run to the run that continued its driver; see ``StreamStore``."""
    params = {
        "b_stream_run_id": stream_run_id, "b_previous_run_id": previous_run_id,
        "b_run_id": run_id, "b_now": now,
    }  # fmt: skip
    if await db.first(ADOPT, params) is not None:
        return True
    if await get_stream_run(db, stream_run_id) is None:
        raise StreamRunNotFoundError(stream_run_id)
    return False


async def list_stream_runs(db: Session, *, stream: str | None, limit: int) -> list[StreamRunRecord]:
    """Stream runs newest first."""
    if limit <= 0:
        return []
    return [
        _stream_run(r)
        for r in await db.query(list_stream_runs_statement(stream=stream, limit=limit))
    ]


async def list_subscriptions(db: Session, stream_run_id: str) -> list[SubscriptionRecord]:
    """The stream run's subscriptions by step name."""
    rows = await db.all(LIST_SUBSCRIPTIONS, {"b_stream_run_id": stream_run_id})
    return [_subscription(r) for r in rows]


async def list_signals(
    db: Session, stream_run_id: str, *, after_seq: int, limit: int
) -> list[SignalRecord]:
    """Signals with ``seq > after_seq``, in seq order."""
    if limit <= 0:
        return []
    params = {"b_stream_run_id": stream_run_id, "b_after": after_seq, "b_limit": limit}
    return [_signal(r) for r in await db.all(LIST_SIGNALS, params)]


async def list_deliveries(db: Session, stream_run_id: str) -> list[DeliveryRecord]:
    """Every delivery, by batch then step name."""
    rows = await db.all(LIST_DELIVERIES, {"b_stream_run_id": stream_run_id})
    return [DeliveryRecord(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]


async def open_stream_run(
    db: Session,
    stream_run_id: str,
    *,
    stream: str,
    run_id: str,
    subscriptions: Sequence[SubscriptionSpec],
    now: float,
) -> tuple[StreamRunRecord, bool]:
    """Create the stream run and its pending subscriptions; see ``StreamStore``."""
    values = {
        "b_stream_run_id": stream_run_id, "b_stream": stream, "b_run_id": run_id,
        "b_status": "running", "b_last_seq": 0, "b_last_batch": 0, "b_wait_hook": None,
        "b_created_at": now, "b_updated_at": now,
    }  # fmt: skip
    if not await db.execute(insert_stream_run(db.dialect), values):
        existing = await get_stream_run(db, stream_run_id)
        if existing is None:  # gone again between the two statements: retention cannot do that
            raise StorageError(f"stream run {stream_run_id!r} vanished while opened")
        if existing.stream != stream or existing.run_id != run_id:
            raise StreamRunConflictError(
                stream_run_id, f"stream {existing.stream!r}, driven by run {existing.run_id!r}"
            )
        return existing, False
    if subscriptions:
        rows = [
            {"stream_run_id": stream_run_id, "step_name": spec.step_name, "stream": spec.stream,
             "signal_types": encode(list(spec.signal_types)),
             "status": StreamStepStatus.PENDING.value, "seen_seq": 0, "result": None,
             "has_result": False, "checkpoint": None, "detail": None, "resume_signals": None,
             "deliveries": 0, "updated_at": now, "refused": 0}
            for spec in subscriptions
        ]  # fmt: skip
        await db.insert(INSERT_SUBSCRIPTION, [_bound(row) for row in rows])
    return StreamRunRecord(stream_run_id, stream, run_id, "running", 0, 0, now, now), True


async def emit_signal(db: Session, signal: NewSignal) -> SignalRecord:
    """Store a signal at the next seq and deliver the armed hook; see ``StreamStore``."""
    run_param = {"b_stream_run_id": signal.stream_run_id}
    key = signal.idempotency_key
    if key is not None:
        if await db.first(LOCK_STREAM_RUN, run_param) is None:
            raise StreamRunNotFoundError(signal.stream_run_id)
        found = await db.first(SIGNAL_BY_KEY, {**run_param, "b_key": key})
        if found is not None:
            return _signal(found)
    row = await db.first(NEXT_SEQ, {**run_param, "b_now": signal.now})
    if row is None:
        ended = await get_stream_run(db, signal.stream_run_id)
        if ended is None:
            raise StreamRunNotFoundError(signal.stream_run_id)
        raise StreamRunEndedError(signal.stream_run_id, ended.status)
    seq, waiter, last_batch, driver = row[0], row[1], row[2], row[3]
    record = SignalRecord(
        stream_run_id=signal.stream_run_id,
        seq=seq,
        signal_id=signal.signal_id,
        stream=signal.stream,
        signal_type=signal.signal_type,
        payload=signal.payload,
        emitted_at=signal.now,
        source_run_id=signal.source_run_id,
        idempotency_key=key,
    )
    values = {
        "stream_run_id": record.stream_run_id, "seq": seq, "signal_id": record.signal_id,
        "stream": record.stream, "signal_type": record.signal_type,
        "payload": encode(record.payload), "emitted_at": record.emitted_at,
        "source_run_id": record.source_run_id, "idempotency_key": key,
    }  # fmt: skip
    await db.insert(INSERT_SIGNAL, [_bound(values)])
    if waiter is None:
        return record
    await db.execute(CLEAR_WAIT, run_param)
    woke = await _wake(db, signal.stream_run_id, waiter, seq, last_batch + 1, driver, signal.now)
    return dataclasses.replace(record, woke=woke, driver=driver if woke else None)


async def _wake(
    db: Session, stream_run_id: str, token_hash: str, seq: int, batch: int, driver: str, now: float
) -> bool:
    """Deliver the waiter's hook with batch ``batch``, taken now, as its payload.

    False, taking nothing, for a hook that no longer takes a payload (timed out).
    """
    params = {"b_token_hash": token_hash, "b_payload": encode(seq), "b_now": now}
    if await db.deliver(params) is None:
        return False
    # Delivered first and its payload set after, in this transaction: a batch is taken only
    # for a hook that takes it (nothing is seen before the commit).
    taken = await take_stream_batch(db, stream_run_id, batch=batch, outcomes=(), now=now)
    payload = encode(batch_payload(taken, driver))
    await db.execute(WAKE_PAYLOAD, {"b_token_hash": token_hash, "b_payload": payload})
    return True


async def arm_stream_wait(
    db: Session, stream_run_id: str, *, token_hash: str, seen_seq: int, now: float
) -> bool:
    """Arm the waiting hook, or deliver it now if a signal came after ``seen_seq``."""
    run_param = {"b_stream_run_id": stream_run_id}
    row = await db.first(ARM_WAIT, {**run_param, "b_token_hash": token_hash})
    if row is None:
        raise StreamRunNotFoundError(stream_run_id)
    if row[0] > seen_seq:
        await db.execute(CLEAR_WAIT, run_param)
        await _wake(db, stream_run_id, token_hash, row[0], row[1] + 1, row[2], now)
        return True
    return False


async def take_stream_batch(
    db: Session,
    stream_run_id: str,
    *,
    batch: int,
    outcomes: Sequence[SubscriptionOutcome],
    now: float,
) -> DeliveryBatch:
    """Apply ``outcomes`` and take batch ``batch``, or read it if taken; see ``StreamStore``."""
    run_param = {"b_stream_run_id": stream_run_id}
    advanced = await db.first(ADVANCE_BATCH, {**run_param, "b_batch": batch, "b_now": now})
    if advanced is None:
        existing = await get_stream_run(db, stream_run_id)
        if existing is None:
            raise StreamRunNotFoundError(stream_run_id)
        if existing.last_batch == batch and batch > 0:
            return await _read_batch(db, existing, batch)
        raise StorageError(
            f"stream run {stream_run_id!r} is at batch {existing.last_batch}; batch {batch} "
            "cannot be taken"
        )
    for outcome in outcomes:
        sub = {**run_param, "b_step_name": outcome.step_name}
        resume = outcome.resume_signals
        await db.execute(
            OUTCOME_STATUS,
            {**sub, "b_status": outcome.status.value, "b_detail": outcome.detail,
             "b_resume_signals": None if resume is None else encode(list(resume)), "b_now": now},
        )  # fmt: skip
        if outcome.set_result:
            await db.execute(OUTCOME_RESULT, {**sub, "b_result": encode(outcome.result)})
        if outcome.set_checkpoint:
            await db.execute(
                OUTCOME_CHECKPOINT, {**sub, "b_checkpoint": encode(outcome.checkpoint)}
            )
        if outcome.refused:
            await db.execute(OUTCOME_REFUSED, sub)
            await db.execute(DELIVERY_REFUSED, {**sub, "b_batch": batch - 1})
    subs = await list_subscriptions(db, stream_run_id)
    active = (StreamStepStatus.WAITING, StreamStepStatus.SUSPENDED)
    cursors = [s.cursor for s in subs if s.status in active]
    window: list[SignalRecord] = []
    if cursors:
        window = await list_signals(db, stream_run_id, after_seq=min(cursors), limit=SIGNAL_WINDOW)
    plan = plan_deliveries(subs, window)
    deliveries: list[dict[str, Any]] = []
    moved = {s.step_name: s for s in subs}
    for name, (what, cursor) in sorted(plan.items()):
        delivered = what != 0
        record = moved[name]
        status = StreamStepStatus.RUNNING if delivered else record.status
        if delivered:
            deliveries.append(
                {"stream_run_id": stream_run_id, "batch": batch, "step_name": name, "seq": what,
                 "refused": False}
            )  # fmt: skip
        await db.execute(
            MOVE_CURSOR,
            {**run_param, "b_step_name": name, "b_seen_seq": cursor,
             "b_status": status.value, "b_delivered": int(delivered), "b_now": now},
        )  # fmt: skip
        moved[name] = dataclasses.replace(
            record, status=status, cursor=cursor, deliveries=record.deliveries + delivered,
            updated_at=now,
        )  # fmt: skip
    if deliveries:
        await db.insert(INSERT_DELIVERY, [_bound(row) for row in deliveries])
    aggregate = aggregate_status([s.status for s in moved.values()])
    await db.execute(STREAM_STATUS, {**run_param, "b_status": aggregate})
    # The batch as it now stands, from what this transaction wrote (no reading back): the
    # subscriptions in their stored order, the deliveries in theirs, by step name.
    signals = {s.seq: s for s in window}
    ordered = [moved[s.step_name] for s in subs]
    taken: list[tuple[DeliveryRecord, SignalRecord | None]] = []
    for record in ordered:
        seq = plan.get(record.step_name, (0, 0))[0]
        if seq != 0:
            delivery = DeliveryRecord(stream_run_id, batch, record.step_name, seq)
            taken.append((delivery, None if seq is None else signals[seq]))
    return DeliveryBatch(batch, taken, ordered, advanced[0], aggregate)


async def _read_batch(db: Session, record: StreamRunRecord, batch: int) -> DeliveryBatch:
    params = {"b_stream_run_id": record.stream_run_id, "b_batch": batch}
    taken: list[tuple[DeliveryRecord, SignalRecord | None]] = []
    for row in await db.all(BATCH_DELIVERIES, params):
        delivery = DeliveryRecord(row[0], row[1], row[2], row[3], bool(row[4]))
        signal_row = row[_DELIVERY_COLUMNS : _DELIVERY_COLUMNS + _SIGNAL_COLUMNS]
        taken.append((delivery, None if delivery.seq is None else _signal(signal_row)))
    subs = await list_subscriptions(db, record.stream_run_id)
    return DeliveryBatch(batch, taken, subs, record.last_seq, record.status)
