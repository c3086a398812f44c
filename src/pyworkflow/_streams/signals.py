"""The ``Signal`` a stream step sees, and the validation of a payload against its schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyworkflow.durations import to_datetime
from pyworkflow.exceptions import InvalidSignalPayloadError

__all__ = ["Signal", "plain_payload", "validate_payload"]


@dataclass(frozen=True, slots=True)
class Signal:
    """A signal as a stream step receives it (``get_current_signal()``, ``on_signal``).

    Attributes:
        signal_id: unique id of the signal.
        stream_id: the stream (channel) it was emitted on.
        signal_type: its type, e.g. ``"task.assigned"``.
        payload: its payload (validated when a schema is bound to its type).
        published_at: when it was emitted (the emitter's clock).
        sequence: its place in its stream run: 1, 2, 3 ... in emit order, no gaps.
        source_run_id: the run whose code emitted it, or None (outside code).
        stream_run_id: the stream run it belongs to.
        metadata: free-form extra data (empty today).
    """

    signal_id: str
    stream_id: str
    signal_type: str
    payload: Any
    published_at: datetime
    sequence: int | None
    source_run_id: str | None
    stream_run_id: str | None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_parts(cls, parts: dict[str, Any]) -> Signal:
        """Rebuild a signal from the plain dict a delivery step receives (``to_parts``)."""
        return cls(
            signal_id=parts["signal_id"],
            stream_id=parts["stream"],
            signal_type=parts["signal_type"],
            payload=parts["payload"],
            published_at=to_datetime(parts["emitted_at"]),
            sequence=parts["seq"],
            source_run_id=parts["source_run_id"],
            stream_run_id=parts["stream_run_id"],
        )


def _is_pydantic(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "model_validate") and hasattr(tp, "model_fields")


def plain_payload(payload: Any) -> Any:
    """A pydantic model as its JSON-shaped dict; anything else as it is."""
    dump = getattr(payload, "model_dump", None)
    if callable(dump) and _is_pydantic(type(payload)):
        return dump(mode="json")
    return payload


def validate_payload(stream: str, signal_type: str, schema: Any, payload: Any) -> Any:
    """``payload`` checked against ``schema`` (a pydantic model); the validated dict.

    Raises:
        InvalidSignalPayloadError: it does not fit (names the first offending field).
    """
    if not _is_pydantic(schema):
        return payload
    try:
        model = schema.model_validate(payload)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        errors = getattr(exc, "errors", None)
        first = errors()[0] if callable(errors) and errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "<payload>"
        detail = str(first.get("msg", exc))
        raise InvalidSignalPayloadError(stream, signal_type, where, detail) from None
    return model.model_dump(mode="json")
