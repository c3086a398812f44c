"""The OpenAPI 3.1 document of ``/api``, written by hand next to the routes it describes.

The schemas of the answers are in ``schemas.py``.
"""

from __future__ import annotations

from typing import Any

from pyworkflow import __version__
from pyworkflow.dashboard.schemas import STR as _STR
from pyworkflow.dashboard.schemas import obj as _obj
from pyworkflow.dashboard.schemas import ref as _ref
from pyworkflow.dashboard.schemas import schemas

__all__ = ["openapi_document"]


def _query(name: str, description: str, *, many: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": _STR} if many else _STR
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        **({"explode": True} if many else {}),
    }


_RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": _STR}
_SCHEDULE_ID = {"name": "schedule_id", "in": "path", "required": True, "schema": _STR}
_STREAM_RUN_ID = {"name": "stream_run_id", "in": "path", "required": True, "schema": _STR}
_FILTERS = [
    _query("status", "Only runs in these statuses (repeat the parameter).", many=True),
    _query("workflow", "Only runs of this workflow."),
    _query("since", "Created at or after: a duration back from now (1h) or ISO date-time."),
    _query("until", "Created before: a duration back from now or ISO date-time."),
    _query("run_id", "Only runs whose id starts with this."),
    _query("schedule", "Only runs this schedule started (its id)."),
    _query("tag", "Only runs carrying every one of these tags (repeat the parameter).", many=True),
    _query("limit", "Runs per page, 1 to 500 (default 50)."),
    _query("before", "The next_before of the previous page."),
]


def _answer(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _answer(_ref("Error"), "Bad input (the message names the parameter)"),
    "404": _answer(_ref("Error"), "No such run, hook, workflow, schedule or stream run"),
}
_WRITE_ERRORS = {
    **_ERRORS,
    "403": _answer(_ref("Error"), "Read-only dashboard, or no valid write token / CSRF value"),
    "409": _answer(_ref("Error"), "The run or hook is in the wrong state"),
}


def _get(summary: str, schema: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {"200": _answer(schema), **_ERRORS},
        }
    }


def _post(
    summary: str,
    schema: dict[str, Any],
    body: dict[str, Any] | None,
    path: dict[str, Any] = _RUN_ID,
    method: str = "post",
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [path],
        "security": [{"bearer": []}, {"cookie": []}],
        "responses": {"200": _answer(schema), **_WRITE_ERRORS},
    }
    if body is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": body}},
        }
    return {method: operation}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict: callers may change it)."""
    paths = {
        "/api/meta": _get("What this dashboard allows", _ref("Meta"), []),
        "/api/runs": _get("One page of runs, newest first", _ref("RunPage"), _FILTERS),
        "/api/runs/counts": _get(
            "Runs per status",
            _ref("Counts"),
            [_query("workflow", "Only this workflow."), _query("since", "Created at or after.")],
        ),
        "/api/runs/{run_id}": _get("Everything about one run", _ref("RunDetails"), [_RUN_ID]),
        "/api/runs/{run_id}/history": _get(
            "The run's event log",
            _ref("History"),
            [_RUN_ID, _query("after_seq", "Events after this.")],
        ),
        "/api/runs/{run_id}/values/{name}": _get(
            "A run's whole args or result",
            {},
            [
                _RUN_ID,
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": ["args", "result"]},
                },
            ],
        ),
        "/api/runs/{run_id}/children": _get(
            "The runs a run started",
            _ref("Children"),
            [_RUN_ID, _query("limit", "Runs per page."), _query("before", "The cursor.")],
        ),
        "/api/runs/{run_id}/chain": _get("The continue-as-new chain", _ref("Chain"), [_RUN_ID]),
        "/api/runs/{run_id}/cancel": _post(
            "Ask the run to stop", {"type": "object"}, _obj({"reason": _STR}, [])
        ),
        "/api/runs/{run_id}/resume": _post("Resume a failed run", {"type": "object"}, None),
        "/api/runs/{run_id}/rerun": _post(
            "Start the same workflow with the same arguments", {"type": "object"}, None
        ),
        "/api/runs/{run_id}/hooks/deliver": _post(
            "Deliver a payload to the run's waiting hook",
            _ref("Hook"),
            _obj({"hook_id": _STR, "payload": {}}, ["hook_id"]),
        ),
        "/api/hooks": _get(
            "Hooks, newest first (never a token)",
            _ref("Hooks"),
            [_query("run_id", "Only this run's hooks."), _query("status", "Only this status.")],
        ),
        "/api/streams": _get(
            "Stream runs, newest first",
            _ref("StreamRuns"),
            [_query("stream", "Only this stream's."), _query("limit", "1 to 500 (default 100).")],
        ),
        "/api/streams/{stream_run_id}": _get(
            "A stream run: subscriptions (status, cursor, result) and latest signals",
            _ref("StreamRunDetails"),
            [_STREAM_RUN_ID],
        ),
        "/api/workflows": _get(
            "Workflows with counts and duration percentiles", _ref("Workflows"), []
        ),
        "/api/workflows/counts": _get(
            "Runs per status of each workflow (all its runs)", _ref("WorkflowCounts"), []
        ),
        "/api/schedules": _get(
            "Schedules by id (deleted ones only with status=deleted)",
            _ref("Schedules"),
            [
                _query("status", "Only this status: active, paused or deleted."),
                _query("workflow", "Only this workflow's schedules."),
            ],
        ),
        "/api/schedules/{schedule_id}": {
            **_get("One schedule, deleted or not", _ref("Schedule"), [_SCHEDULE_ID]),
            **_post(
                "Delete the schedule: it starts nothing more, its runs go on",
                _ref("Schedule"),
                None,
                _SCHEDULE_ID,
                method="delete",
            ),
        },
        "/api/schedules/{schedule_id}/pause": _post(
            "Pause the schedule: no runs start until it is resumed",
            _ref("Schedule"),
            None,
            _SCHEDULE_ID,
        ),
        "/api/schedules/{schedule_id}/resume": _post(
            "Resume the schedule from its next slot after now",
            _ref("Schedule"),
            None,
            _SCHEDULE_ID,
        ),
        "/api/schedules/{schedule_id}/trigger": _post(
            "Start a run of the schedule now, outside its slots",
            _ref("Triggered"),
            None,
            _SCHEDULE_ID,
        ),
        "/api/schedules/{schedule_id}/backfill": _post(
            "Start a run for every slot from start to end (a slot's run is started once)",
            _ref("Backfilled"),
            _obj(
                {
                    "start": {
                        "type": "string",
                        "description": "ISO 8601 date-time (UTC without an offset) or a "
                        "duration back from now (2d)",
                    },
                    "end": {"type": "string", "description": "As start; now when absent"},
                },
                ["start"],
            ),
            _SCHEDULE_ID,
        ),
        "/api/openapi.json": _get("This document", {"type": "object"}, []),
    }
    for created in (
        "/api/runs/{run_id}/rerun",
        "/api/schedules/{schedule_id}/trigger",
        "/api/schedules/{schedule_id}/backfill",
    ):
        answers = paths[created]["post"]["responses"]
        answers["201"] = answers.pop("200")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pyworkflow dashboard",
            "version": __version__,
            "description": (
                "Runs, their timelines and hooks, schedules; writes need the write token."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "pyworkflow_dashboard"},
            },
        },
    }
