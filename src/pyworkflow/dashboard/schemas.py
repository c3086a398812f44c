"""The JSON schemas of the API's answers (``components/schemas`` of ``/api/openapi.json``).

They name the keys the read model's ``to_json`` forms carry (``pyworkflow.inspect``); objects
allow more keys, as those forms only ever add keys. ``openapi.py`` puts them in the document
beside the paths that answer with them.
"""

from __future__ import annotations

from typing import Any

from pyworkflow.events import HookStatus, RunStatus, ScheduleStatus

__all__ = ["NSTR", "STR", "TIME", "obj", "ref", "schemas"]

STR = {"type": "string"}
"""A string."""
NSTR = {"type": ["string", "null"]}
"""A string or null."""
TIME = {"type": ["string", "null"], "format": "date-time"}
"""An ISO 8601 time in UTC, or null."""


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """An object with ``properties``, those of ``required`` (default: all) always present."""
    return {"type": "object", "properties": properties, "required": required or list(properties)}


def ref(name: str) -> dict[str, str]:
    """A reference to the schema ``name`` of :func:`schemas`."""
    return {"$ref": f"#/components/schemas/{name}"}


def schemas() -> dict[str, Any]:
    """Every schema by name (a fresh dict)."""
    run = obj(
        {
            "run_id": STR,
            "workflow": STR,
            "status": {"type": "string", "enum": [s.value for s in RunStatus]},
            "created_at": TIME,
            "updated_at": TIME,
            "completed_at": TIME,
            "wake_at": TIME,
            "idempotency_key": NSTR,
            "parent_run_id": NSTR,
            "recovery_count": {"type": "integer"},
            "cancel_requested": {"type": "boolean"},
            "parent_close_policy": NSTR,
            "continued_from": NSTR,
            "continued_to": NSTR,
            "queue": STR,
            "waits_for_worker": {"type": "boolean"},
            "schedule_id": NSTR,
            "schedule_slot_at": TIME,
            "tags": {"type": "array", "items": STR},
            "damage": NSTR,
        }
    )
    hook = obj(
        {
            "run_id": STR,
            "hook_id": STR,
            "name": STR,
            "status": {"type": "string", "enum": [s.value for s in HookStatus]},
            "payload_type": NSTR,
            "created_at": TIME,
            "expires_at": TIME,
            "received_at": TIME,
        }
    )
    any_list = {"type": "array", "items": {"type": "object"}}
    details_keys = {
        "args": {},
        "result": {},
        "error": {"type": ["object", "null"]},
        "timeline": any_list,
        "steps": any_list,
        "children": {"type": "array", "items": ref("Run")},
        "more_children": {"type": "boolean"},
        "waiting_hooks": {"type": "array", "items": ref("Hook")},
        "spans": any_list,
        "marks": any_list,
        "events": {"type": "integer"},
    }
    # Only a run that drives a stream run (pyworkflow.stream) has stream_run.
    details = {
        "allOf": [
            ref("Run"),
            obj({**details_keys, "stream_run": ref("StreamRunDetails")}, list(details_keys)),
        ]
    }
    per_status = {"type": "object", "additionalProperties": {"type": "integer"}}
    number = {"type": ["number", "null"]}
    return {
        "Error": obj({"error": STR, "message": STR}),
        "Run": run,
        "Hook": hook,
        "RunPage": obj({"runs": {"type": "array", "items": ref("Run")}, "next_before": NSTR}),
        "RunDetails": details,
        "Counts": obj({"counts": per_status, "total": {"type": "integer"}, "since": TIME}),
        "History": obj({"run_id": STR, "events": any_list}),
        "Children": obj(
            {
                "run_id": STR,
                "children": {"type": "array", "items": ref("Run")},
                "next_before": NSTR,
            }
        ),
        "Chain": obj({"run_id": STR, "chain": any_list}),
        "Hooks": obj({"hooks": {"type": "array", "items": ref("Hook")}}),
        "WorkflowStats": obj(
            {
                "workflow": STR,
                "total": {"type": "integer"},
                "last_hour": per_status,
                "last_day": per_status,
                "success_rate": number,
                "p50": number,
                "p95": number,
                "p99": number,
                "sampled": {"type": "integer"},
                "registered": {"type": "boolean"},
            }
        ),
        "Workflows": obj({"workflows": {"type": "array", "items": ref("WorkflowStats")}}),
        "WorkflowCounts": obj(
            {"workflows": {"type": "object", "additionalProperties": ref("Counts")}}
        ),
        "Schedule": obj(
            {
                "schedule_id": STR,
                "workflow": STR,
                "status": {"type": "string", "enum": [s.value for s in ScheduleStatus]},
                "describes": STR,
                "spec": {"type": "object"},
                "overlap_policy": STR,
                "catchup_window": number,
                "next_run_at": TIME,
                "last_run_at": TIME,
                "last_run_id": NSTR,
                "total_runs": {"type": "integer"},
                "skipped_runs": {"type": "integer"},
                "buffered_runs": {"type": "integer"},
                "runs_by_status": per_status,
                "created_at": TIME,
                "updated_at": TIME,
            }
        ),
        "Schedules": obj({"schedules": {"type": "array", "items": ref("Schedule")}}),
        "Triggered": obj({"schedule_id": STR, "run_id": STR}),
        "Backfilled": obj({"schedule_id": STR, "run_ids": {"type": "array", "items": STR}}),
        "Meta": obj({"writable": {"type": "boolean"}}),
        **_stream_schemas(),
    }


def _stream_schemas() -> dict[str, Any]:
    """A stream run's row, and with its subscriptions and latest signals (inspect/streams.py)."""
    count = {"type": "integer"}
    names = {"type": "array", "items": STR}
    subscription = obj(
        {
            "step": STR,
            "stream": STR,
            "signal_types": names,
            "status": STR,
            "cursor": count,
            "deliveries": count,
            "refused": count,
            "result": {},
            "checkpoint": {},
            "detail": NSTR,
        }
    )
    signal = obj(
        {
            "seq": count,
            "stream": STR,
            "signal_type": STR,
            "payload": {},
            "emitted_at": TIME,
            "source_run_id": NSTR,
            "delivered_to": names,
            "refused_by": names,
        }
    )
    row = {
        "stream_run_id": STR,
        "stream": STR,
        "run_id": STR,
        "status": {"type": "string", "enum": ["running", "suspended", "completed"]},
        "signals": count,
        "batches": count,
        "created_at": TIME,
        "updated_at": TIME,
    }
    return {
        "StreamRun": obj(row),
        "StreamRuns": obj({"stream_runs": {"type": "array", "items": ref("StreamRun")}}),
        "StreamRunDetails": obj(
            {
                **row,
                "subscriptions": {"type": "array", "items": subscription},
                "latest_signals": {"type": "array", "items": signal},
            }
        ),
    }
