"""Stream runs as readers show them: their subscriptions, signals and deliveries.

Values are decoded with the process's ``Codec`` where they can be; one that cannot (its class
is not importable here) is shown as it is stored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyworkflow.exceptions import PyWorkflowError, StorageError, StreamRunNotFoundError
from pyworkflow.serialization import Codec
from pyworkflow.storage import StreamRunRecord, StreamStore

__all__ = [
    "DRIVER_WORKFLOW",
    "SIGNALS_SHOWN",
    "StreamRunDetails",
    "get_stream_run",
    "get_stream_run_details",
    "list_stream_runs",
    "stream_of_run",
    "stream_run_id_of",
    "stream_run_json",
]

DRIVER_WORKFLOW = "pyworkflow.stream"
"""The workflow whose runs drive stream runs (``run_stream_workflow`` starts one)."""

SIGNALS_SHOWN = 50
"""How many of a stream run's latest signals ``get_stream_run_details`` reads."""


def _store(storage: Any) -> StreamStore:
    if not isinstance(storage, StreamStore):
        raise StorageError(f"storage {getattr(storage, 'url', storage)!r} has no stream runs")
    return storage


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat()


def _decoded(codec: Codec, value: Any) -> Any:
    try:
        return codec.decode(value)
    except PyWorkflowError:
        return value  # shown as stored: nothing here fails on what is stored


def stream_run_json(record: StreamRunRecord) -> dict[str, Any]:
    """A stream run's row in JSON: id, stream, driving run, status, signals, batches, times."""
    return {
        "stream_run_id": record.stream_run_id,
        "stream": record.stream,
        "run_id": record.run_id,
        "status": record.status,
        "signals": record.last_seq,
        "batches": record.last_batch,
        "created_at": _iso(record.created_at),
        "updated_at": _iso(record.updated_at),
    }


@dataclass(frozen=True)
class StreamRunDetails:
    """A stream run with its subscriptions and its latest signals.

    Attributes:
        record: the stream run's row.
        subscriptions: one JSON-ready dict per stream step (status, cursor, deliveries,
            result, checkpoint, detail).
        signals: the latest signals (at most :data:`SIGNALS_SHOWN`), oldest first, each with
            the stream steps it was delivered to and those that refused its payload.
    """

    record: StreamRunRecord
    subscriptions: list[dict[str, Any]]
    signals: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types, stable keys."""
        return {
            **stream_run_json(self.record),
            "subscriptions": self.subscriptions,
            "latest_signals": self.signals,
        }


async def list_stream_runs(
    storage: Any, *, stream: str | None = None, limit: int = 100
) -> list[StreamRunRecord]:
    """Stream runs newest first, of one stream or all."""
    return await _store(storage).list_stream_runs(stream=stream, limit=limit)


async def get_stream_run_details(
    storage: Any, stream_run_id: str, *, codec: Codec
) -> StreamRunDetails:
    """One stream run whole enough to show.

    Raises:
        StreamRunNotFoundError: no stream run has this id.
    """
    store = _store(storage)
    record = await store.get_stream_run(stream_run_id)
    if record is None:
        raise StreamRunNotFoundError(stream_run_id)
    deliveries = await store.list_deliveries(stream_run_id)
    to: dict[int, list[str]] = {}
    refused: dict[int, list[str]] = {}
    for delivery in deliveries:
        if delivery.seq is not None:
            (refused if delivery.refused else to).setdefault(delivery.seq, []).append(
                delivery.step_name
            )
    counts = Counter(d.step_name for d in deliveries)
    subscriptions = [
        {
            "step": s.step_name,
            "stream": s.stream,
            "signal_types": list(s.signal_types),
            "status": s.status.value,
            "cursor": s.cursor,
            "deliveries": counts[s.step_name],
            "refused": s.refused,
            "result": _decoded(codec, s.result) if s.has_result else None,
            "checkpoint": None if s.checkpoint is None else _decoded(codec, s.checkpoint),
            "detail": s.detail,
        }
        for s in await store.list_subscriptions(stream_run_id)
    ]
    after = max(0, record.last_seq - SIGNALS_SHOWN)
    signals = [
        {
            "seq": s.seq,
            "stream": s.stream,
            "signal_type": s.signal_type,
            "payload": _decoded(codec, s.payload),
            "emitted_at": _iso(s.emitted_at),
            "source_run_id": s.source_run_id,
            "delivered_to": to.get(s.seq, []),
            "refused_by": refused.get(s.seq, []),
        }
        for s in await store.list_signals(stream_run_id, after_seq=after, limit=SIGNALS_SHOWN)
    ]
    return StreamRunDetails(record, subscriptions, signals)


def stream_run_id_of(workflow_name: str, arguments: Any) -> str | None:
    """The id of the stream run a run drives, from its call; None for any other run.

    ``arguments``: the run's decoded call (``RunDetails.arguments``, ``DecodedRun.arguments``).
    """
    if workflow_name != DRIVER_WORKFLOW or not isinstance(arguments, dict):
        return None
    args = arguments.get("args")
    if not isinstance(args, list | tuple) or len(args) < 2 or not isinstance(args[1], str):
        return None
    return args[1]


async def get_stream_run(storage: Any, stream_run_id: str) -> StreamRunRecord | None:
    """A stream run's own row (no subscriptions, no signals), or None."""
    return await _store(storage).get_stream_run(stream_run_id)


async def stream_of_run(
    storage: Any, workflow_name: str, arguments: Any, *, codec: Codec
) -> StreamRunDetails | None:
    """The stream run a run drives, for ``runs show`` and the run's page; None for any other run.

    ``arguments``: the run's decoded call (``RunDetails.arguments``).
    """
    stream_run_id = stream_run_id_of(workflow_name, arguments)
    if stream_run_id is None:
        return None
    try:
        return await get_stream_run_details(storage, stream_run_id, codec=codec)
    except StreamRunNotFoundError:
        return None  # not opened yet
