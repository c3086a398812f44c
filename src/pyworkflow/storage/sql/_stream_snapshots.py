"""Stream runs whole, as rows and back: the stream part of a run snapshot (``RunSnapshot.streams``).

``_scripts/snapshots.py`` reads the rows (``_statements/stream_rows.py``) and writes them; this
module turns them into ``StreamSnapshot`` records and those into rows, each value stored as the
stream scripts store it, so a copied stream run reads back equal and goes on where it was.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from pyworkflow._json_text import encode
from pyworkflow.storage.sql._scripts.streams import _signal, _stream_run, _subscription
from pyworkflow.storage.sql._session import Row
from pyworkflow.storage.streams import DeliveryRecord, StreamSnapshot

__all__ = ["stream_snapshots", "stream_values"]

_WAIT_HOOK = 6  # the column of stream_runs that StreamRunRecord leaves out


def stream_snapshots(
    runs: Sequence[Row],
    subscriptions: Sequence[Row],
    signals: Sequence[Row],
    deliveries: Sequence[Row],
) -> dict[str, tuple[StreamSnapshot, ...]]:
    """The stream runs of these rows, grouped by the run driving each, in the rows' order.

    Args:
        runs: rows of ``stream_runs``.
        subscriptions: rows of ``stream_subscriptions`` of those stream runs.
        signals: rows of ``stream_signals`` of those stream runs.
        deliveries: rows of ``stream_deliveries`` of those stream runs.
    """
    subs: dict[str, list[Row]] = defaultdict(list)
    for row in subscriptions:
        subs[row[0]].append(row)
    sent: dict[str, list[Row]] = defaultdict(list)
    for row in signals:
        sent[row[0]].append(row)
    given: dict[str, list[Row]] = defaultdict(list)
    for row in deliveries:
        given[row[0]].append(row)
    found: dict[str, list[StreamSnapshot]] = defaultdict(list)
    for row in runs:
        record = _stream_run(row)
        found[record.run_id].append(
            StreamSnapshot(
                record=record,
                subscriptions=tuple(_subscription(r) for r in subs[record.stream_run_id]),
                signals=tuple(_signal(r) for r in sent[record.stream_run_id]),
                deliveries=tuple(
                    DeliveryRecord(r[0], r[1], r[2], r[3], bool(r[4]))
                    for r in given[record.stream_run_id]
                ),
                wait_hook=row[_WAIT_HOOK],
            )
        )
    return {run_id: tuple(streams) for run_id, streams in found.items()}


def stream_values(
    streams: Iterable[StreamSnapshot],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of ``stream_runs``, ``stream_subscriptions``, ``stream_signals``,
    ``stream_deliveries`` storing ``streams`` as given (``STREAM_COPY_INSERTS``' order).
    """  # noqa: D205 - the tables' names do not fit one line
    runs: list[dict[str, Any]] = []
    subscriptions: list[dict[str, Any]] = []
    signals: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for stream in streams:
        r = stream.record
        runs.append(
            {"stream_run_id": r.stream_run_id, "stream": r.stream, "run_id": r.run_id,
             "status": r.status, "last_seq": r.last_seq, "last_batch": r.last_batch,
             "wait_hook": stream.wait_hook, "created_at": r.created_at,
             "updated_at": r.updated_at}
        )  # fmt: skip
        for s in stream.subscriptions:
            resume = None if s.resume_signals is None else encode(list(s.resume_signals))
            subscriptions.append(
                {"stream_run_id": s.stream_run_id, "step_name": s.step_name,
                 "stream": s.stream, "signal_types": encode(list(s.signal_types)),
                 "status": s.status.value, "seen_seq": s.cursor,
                 "result": encode(s.result) if s.has_result else None,
                 "has_result": s.has_result,
                 "checkpoint": None if s.checkpoint is None else encode(s.checkpoint),
                 "detail": s.detail, "resume_signals": resume, "deliveries": s.deliveries,
                 "updated_at": s.updated_at, "refused": s.refused}
            )  # fmt: skip
        signals.extend(
            {"stream_run_id": g.stream_run_id, "seq": g.seq, "signal_id": g.signal_id,
             "stream": g.stream, "signal_type": g.signal_type, "payload": encode(g.payload),
             "emitted_at": g.emitted_at, "source_run_id": g.source_run_id,
             "idempotency_key": g.idempotency_key}
            for g in stream.signals
        )  # fmt: skip
        deliveries.extend(
            {"stream_run_id": d.stream_run_id, "batch": d.batch, "step_name": d.step_name,
             "seq": d.seq, "refused": d.refused}
            for d in stream.deliveries
        )  # fmt: skip
    return runs, subscriptions, signals, deliveries
