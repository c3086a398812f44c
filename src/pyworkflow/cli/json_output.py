"""What ``--json`` prints: one JSON document per command, with these stable keys.

The documents are the ``to_json()`` of the read model's objects (``pyworkflow.inspect``), put
together per command as listed here; this module only prints them.

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
    before and after it in a continue-as-new chain), ``queue`` (whose workers execute it),
    ``waits_for_worker`` (true when it is due and nobody holds it: it waits for a worker of its
    queue), ``damage`` (null for a sound run, else
    what of it cannot be read or shown, naming table, run and column: ``"corrupt runs.args of
    run 'run_...': not valid JSON ..."``; the values it names are null).
    ``runs show`` and ``workflows run`` add ``args`` (``{"args": [...], "kwargs": {...}}``),
    ``result``, ``error`` (``{"type", "message", "traceback"}`` or null); ``runs show`` also
    ``timeline`` (entries below), ``steps`` (attempts below), ``children`` (the newest 20 child
    runs), ``more_children`` (true when it has more: ``runs children`` lists them all) and
    ``waiting_hooks`` (hooks below), ``spans`` (its log as timeline bars: ``kind`` step, sleep,
    hook or child, ``label``, ``start``, ``end``, ``outcome``, ``child_run_id``) and ``marks``
    (``label``, ``at``, ``seq``: take-overs, resumes, cancel requests, its end). In ``runs
    show`` a log that cannot be read adds its
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

``db copy``: ``{"source", "destination", "runs", "events", "hooks", "step_leases",
"leases_dropped", "recopied": [RUN_ID, ...], "seconds", "stream_runs", "signals"}`` (URLs
with passwords masked; ``recopied``: runs copied again because they changed during the copy;
``stream_runs``, ``signals``: the stream runs the copied runs drive, and their signals).
"""

from __future__ import annotations

import json
from typing import Any

import click

from pyworkflow.inspect import jsonable

__all__ = ["emit"]


def emit(document: Any, *, indent: int | None = 2) -> None:
    """Print ``document`` as JSON on stdout (``indent=None``: one line, for JSON Lines)."""
    click.echo(json.dumps(jsonable(document), indent=indent, ensure_ascii=False))
