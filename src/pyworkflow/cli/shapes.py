"""What ``--json`` prints: one JSON document per command, with these stable keys.

Times are ISO 8601 strings in UTC (``"2024-05-01T12:00:00.123456+00:00"``), durations are
float seconds, absent values are ``null``. Keys are only ever added, never renamed or removed.
Values that workflows pass around (arguments, results) are decoded and then written as JSON:
datetimes as ISO strings, UUIDs and Decimals as strings, bytes as base64, dataclasses and
pydantic models as objects, sets and tuples as lists; a value this process cannot decode (its
class is not importable here, a pickle refused) appears in its stored, encoded form.

A **run** (``runs list``, ``runs show``, ``workflows run``):
    ``run_id``, ``workflow``, ``status`` (pending, running, suspended, completed, failed,
    cancelled, continued_as_new), ``created_at``, ``updated_at``, ``completed_at``,
    ``wake_at`` (when a suspended run wakes on a timer), ``idempotency_key``,
    ``parent_run_id``, ``recovery_count``, ``cancel_requested``, ``parent_close_policy``
    (a child's: ``cancel`` or ``abandon``), ``continued_from`` and ``continued_to`` (the runs
    before and after it in a continue-as-new chain), ``damage`` (null for a sound run, else
    what of it cannot be read or shown, naming table, run and column: ``"corrupt runs.args of
    run 'run_...': not valid JSON ..."``; the values it names are null).
    ``runs show`` and ``workflows run`` add ``args`` (``{"args": [...], "kwargs": {...}}``),
    ``result``, ``error`` (``{"type", "message", "traceback"}`` or null); ``runs show`` also
    ``timeline`` (entries below), ``steps`` (attempts below), ``children`` (the newest 20 child
    runs), ``more_children`` (true when it has more: ``runs children`` lists them all) and
    ``waiting_hooks`` (hooks below). In ``runs show`` a log that cannot be read adds its
    damage to ``damage``, and ``timeline`` and ``steps`` are empty.

``runs list``: ``{"runs": [run, ...], "next_before": RUN_ID or null}``; pass ``next_before`` as
``--before`` for the next (older) page; null means this page is the last.

An **event** (``runs history``, ``workflows run``): ``run_id``, ``seq``, ``type`` (e.g.
``step_completed``), ``timestamp``, ``data`` (the payload exactly as stored). ``runs history``
prints ``{"run_id": ..., "events": [event, ...]}``.

A **timeline entry**: ``seq``, ``type``, ``timestamp``, ``since_previous`` and ``since_start``
(seconds), ``summary`` (the one line a human sees).

A **step attempt**: ``step_id`` (``name#n``), ``name``, ``attempt`` (1, 2 ...), ``started_at``,
``ended_at``, ``duration``, ``outcome`` (``running``, ``completed``, ``retried``: failed and
retried later, ``failed``: failed for good, ``interrupted``: its worker stopped before it
ended), ``error`` (``{"type", "message", "traceback"}`` or null).

A **workflow** (``workflows list``: ``{"workflows": [...]}``, ``workflows info``): ``name``,
``function`` (``module.qualname``), ``signature`` (``"(user_id: str) -> dict"``),
``parameters`` (``name``, ``kind``, ``annotation``, ``required``, ``default``),
``max_duration``, ``steps`` (the steps its own code calls by name: ``name``,
``max_retries``, ``retry_delay``, ``timeout``, ``force_local``), ``doc``.

``runs export``: ``{"exported": N, "directory": DIR, "files": [path, ...]}`` (absolute paths,
newest run first), each file a history in ``pyworkflow.testing.save_history``'s format.

``runs children``: ``{"run_id", "children": [run, ...], "next_before"}``, newest first,
paged as ``runs list``. ``runs chain``: ``{"run_id", "chain": [run, ...]}``, first run to last,
each run with ``args`` and ``given`` (true for the run named on the command line).

A **hook** (``hooks list``: ``{"hooks": [...]}``, ``hooks resume``): ``run_id``, ``hook_id``
(``hook:name#n``), ``name``, ``status`` (``waiting``, ``received``, ``expired``),
``payload_type`` (``"module:QualName"`` of a typed hook, else null), ``created_at``,
``expires_at``, ``received_at``. Never a token: only its hash is stored.

``workflows run``: JSON Lines, ``{"event": event}`` per event as it is logged, then
``{"run": run}``; with ``--no-wait``, ``{"run_id": RUN_ID}``. ``runs cancel``:
``{"run_id", "cancel_requested", "status"}``; ``runs resume``: ``{"run_id", "resumed",
"status"}``. ``runs prune``: ``{"ended_before", "dry_run", "deleted"}``, with ``would_delete``
in place of ``deleted`` for ``--dry-run``.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import click

from pyworkflow._run_views import damage_of
from pyworkflow.durations import to_datetime
from pyworkflow.exceptions import SerializationError
from pyworkflow.hooks import HookInfo
from pyworkflow.serialization import Codec
from pyworkflow.storage.records import EventRecord, RunRecord

__all__ = [
    "Undecodable",
    "decode",
    "emit",
    "event_shape",
    "hook_shape",
    "iso",
    "jsonable",
    "run_shape",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Undecodable:
    """A stored value this process cannot decode: kept encoded, with the reason."""

    encoded: Any
    reason: str


def decode(codec: Codec, tree: Any) -> Any:
    """``codec.decode(tree)``, or an ``Undecodable`` instead of failing the whole command."""
    try:
        return codec.decode(tree)
    except SerializationError as exc:
        return Undecodable(tree, str(exc))


def iso(moment: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string; None stays None."""
    return None if moment is None else to_datetime(moment).isoformat()


def jsonable(value: Any) -> Any:
    """A decoded value as plain JSON types (see the module docstring for the conversions)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, Undecodable):
        return value.encoded
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):  # a pydantic model
        return jsonable(model_dump(mode="json"))
    return repr(value)


def run_shape(record: RunRecord) -> dict[str, Any]:
    """The keys every run has in JSON output."""
    waiting = record.status.value == "suspended"
    return {
        "run_id": record.run_id,
        "workflow": record.workflow_name,
        "status": record.status.value,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "completed_at": iso(record.completed_at),
        "wake_at": iso(record.wake_at) if waiting else None,
        "idempotency_key": record.idempotency_key,
        "parent_run_id": record.parent_run_id,
        "recovery_count": record.recovery_count,
        "cancel_requested": record.cancel_requested,
        "parent_close_policy": record.parent_close_policy,
        "continued_from": record.continued_from,
        "continued_to": record.continued_to,
        "damage": damage_of(record),
    }


def hook_shape(info: HookInfo) -> dict[str, Any]:
    """The keys of a hook in JSON output: never its token."""
    return {
        "run_id": info.run_id,
        "hook_id": info.hook_id,
        "name": info.name,
        "status": info.status.value,
        "payload_type": info.payload_type,
        "created_at": info.created_at.isoformat(),
        "expires_at": None if info.expires_at is None else info.expires_at.isoformat(),
        "received_at": None if info.received_at is None else info.received_at.isoformat(),
    }


def event_shape(event: EventRecord) -> dict[str, Any]:
    """One event of the log, its payload as stored."""
    return {
        "run_id": event.run_id,
        "seq": event.seq,
        "type": event.type.value,
        "timestamp": iso(event.created_at),
        "data": event.payload,
    }


def emit(document: Any, *, indent: int | None = 2) -> None:
    """Print ``document`` as JSON on stdout (``indent=None``: one line, for JSON Lines)."""
    click.echo(json.dumps(jsonable(document), indent=indent, ensure_ascii=False))
