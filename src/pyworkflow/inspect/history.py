"""A run's event log as stored, for readers that show it whole or follow it as it grows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyworkflow.inspect.runs import RunView, stored_run
from pyworkflow.inspect.values import iso
from pyworkflow.storage import EventRecord, Storage

__all__ = ["RunHistory", "event_json", "get_history"]


def event_json(event: EventRecord) -> dict[str, Any]:
    """One event in JSON: ``run_id``, ``seq``, ``type``, ``timestamp``, ``data``.

    ``type`` is the event type's value (``"step_completed"``), ``timestamp`` an ISO string,
    ``data`` the payload exactly as stored.
    """
    return {
        "run_id": event.run_id,
        "seq": event.seq,
        "type": event.type.value,
        "timestamp": iso(event.created_at),
        "data": event.payload,
    }


@dataclass(frozen=True, slots=True)
class RunHistory:
    """A run and (part of) its event log.

    Attributes:
        run: the run, read before its events (see ``get_history``).
        events: its events after the ``after_seq`` asked for, in order.
    """

    run: RunView
    events: list[EventRecord]

    def to_json(self) -> dict[str, Any]:
        """``{"run_id": RUN_ID, "events": [event, ...]}`` (an event: ``event_json``)."""
        return {"run_id": self.run.run_id, "events": [event_json(e) for e in self.events]}


async def get_history(storage: Storage, run_id: str, *, after_seq: int = 0) -> RunHistory:
    """The run and its events with ``seq > after_seq``.

    The row is read before the events, so a row that has ended comes with every event up to
    its last: a reader following a run (``after_seq`` = the last seq it has) stops when
    ``run.status`` is terminal and has missed nothing.

    Example:
        >>> history = await get_history(storage, run_id)
        >>> [e.type.value for e in history.events][:2]
        ['workflow_started', 'step_started']

    Raises:
        RunNotFoundError: no such run (or it was deleted meanwhile).
        CorruptRecordError: an event cannot be read back (naming it).
    """
    run = RunView.from_record(await stored_run(storage, run_id))
    return RunHistory(run, await storage.load_events(run_id, after_seq))
