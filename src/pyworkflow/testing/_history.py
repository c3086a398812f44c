"""A run's history outside storage: events from any source, and the export format.

Export format (``save_history`` writes it, ``load_history`` reads it; tests/golden/*.json are
in it too)::

    {
      "format": "pyworkflow-history",        # optional when read
      "workflow": "checkout",                 # the workflow's registered name
      "run_id": "run_0f3a...",                # optional when read (the file name is used)
      "recorded_with_event_format": 1,        # EVENT_FORMAT of the engine that wrote the log
      "events": [
        {"seq": 1, "type": "workflow_started", "payload": {...}, "created_at": 1714557600.0},
        ...
      ]
    }

``payload`` is the event's payload exactly as stored; ``created_at`` (epoch seconds) is
optional. ``load_history`` also reads what ``pyworkflow runs history RUN_ID --json`` prints
(events with ``data`` instead of ``payload``).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyworkflow._engine.event_kinds import EVENT_FORMAT
from pyworkflow.client import WorkflowEvent
from pyworkflow.events import EventType
from pyworkflow.exceptions import InputError
from pyworkflow.storage.records import EventRecord

__all__ = [
    "HISTORY_FORMAT",
    "History",
    "RecordedHistory",
    "as_records",
    "load_history",
    "save_history",
]

HISTORY_FORMAT = "pyworkflow-history"
"""The ``format`` marker of an exported history document (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class RecordedHistory:
    """A run's event log as read from an export (``load_history``).

    Attributes:
        workflow_name: the workflow that recorded it.
        run_id: the run's id (the file name when the export has none).
        events: its events, in ``seq`` order.
    """

    workflow_name: str
    run_id: str
    events: tuple[EventRecord, ...]


History = Sequence[EventRecord] | Sequence[WorkflowEvent] | RecordedHistory
"""What the replay functions take: events from storage, from the client API or an export."""


def as_records(events: History) -> list[EventRecord]:
    """The events as EventRecords, checked to form a history.

    Raises:
        InputError: empty, not starting with WORKFLOW_STARTED, or seqs out of order.
    """
    raw = events.events if isinstance(events, RecordedHistory) else events
    records = [
        e
        if isinstance(e, EventRecord)
        else EventRecord(e.run_id, e.seq, e.type, e.data, e.timestamp.timestamp())
        for e in raw
    ]
    if not records:
        raise InputError("an empty history cannot be replayed: it needs its WORKFLOW_STARTED")
    if records[0].type is not EventType.WORKFLOW_STARTED:
        raise InputError(
            f"a history starts with {EventType.WORKFLOW_STARTED.value!r}, "
            f"not {records[0].type.value!r}"
        )
    for before, after in itertools.pairwise(records):
        if after.seq <= before.seq:
            raise InputError(f"history events out of order: seq {after.seq} after {before.seq}")
    return records


def save_history(
    events: Sequence[EventRecord] | Sequence[WorkflowEvent], path: str | os.PathLike[str]
) -> None:
    """Write a run's events to ``path`` in the export format (see the module docstring).

    Example:
        >>> save_history(await get_workflow_events(run_id), f"{run_id}.json")

    Raises:
        InputError: the events do not form a history.
    """
    records = as_records(events)
    document = {
        "format": HISTORY_FORMAT,
        "workflow": records[0].payload.get("workflow"),
        "run_id": records[0].run_id,
        "recorded_with_event_format": EVENT_FORMAT,
        "events": [
            {"seq": e.seq, "type": e.type.value, "payload": e.payload, "created_at": e.created_at}
            for e in records
        ],
    }
    Path(path).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


def load_history(path: str | os.PathLike[str]) -> RecordedHistory:
    """Read a history exported by ``save_history`` (or a tests/golden-style file).

    Raises:
        InputError: the file is missing, is not JSON, or does not hold a history (the
            message names the file and what is wrong).
    """
    where = os.fspath(path)
    try:
        document = json.loads(Path(where).read_text())
    except OSError as exc:
        raise InputError(f"cannot read history file {where!r}: {exc.strerror}") from exc
    except ValueError as exc:
        raise InputError(f"history file {where!r} is not JSON: {exc}") from exc
    try:
        items = document["events"]
        run_id = str(document.get("run_id") or items[0].get("run_id") or Path(where).stem)
        events = tuple(_event_from_json(item, run_id) for item in items)
        workflow = document.get("workflow") or events[0].payload["workflow"]
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise InputError(
            f"history file {where!r} does not hold a history ({type(exc).__name__}: {exc}); "
            f"expected {{'workflow': ..., 'events': [{{'seq', 'type', 'payload'}}, ...]}}"
        ) from exc
    history = RecordedHistory(str(workflow), run_id, events)
    try:
        as_records(history)
    except InputError as exc:
        raise InputError(f"history file {where!r}: {exc}") from exc
    return history


def _event_from_json(item: dict[str, Any], run_id: str) -> EventRecord:
    payload = item["payload"] if "payload" in item else item["data"]
    if not isinstance(payload, dict):
        raise TypeError(f"the payload of event {item.get('seq')!r} is not an object")
    created = item.get("created_at")
    return EventRecord(
        run_id,
        int(item["seq"]),
        EventType(item["type"]),
        payload,
        float(created) if isinstance(created, int | float) else 0.0,
    )
