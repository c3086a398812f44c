"""The JSON API under ``/api``: what the pages show, for scripts and for the pages' own script.

Reads return the read model's ``to_json`` forms (the same keys as the CLI's ``--json``); writes
(POST) need the write token (``guard.py``) and answer 403 without it, changing nothing. Errors
are ``{"error": TYPE, "message": TEXT}`` with 400 (bad input), 403, 404 (no such run, hook,
workflow, schedule or stream run) or 409 (the run is in the wrong state).
``/api/openapi.json`` describes it all.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pyworkflow.dashboard import actions
from pyworkflow.dashboard.context import Context
from pyworkflow.dashboard.openapi import openapi_document
from pyworkflow.dashboard.params import parse_moment, run_query
from pyworkflow.events import HookStatus, ScheduleStatus
from pyworkflow.exceptions import InputError
from pyworkflow.inspect import (
    get_chain,
    get_decoded_run,
    get_history,
    get_run_details,
    get_schedule,
    hook_json,
    jsonable,
    list_children,
    list_hooks,
    list_runs,
    list_schedules,
    status_counts,
    workflow_stats,
    workflows_status_counts,
)
from pyworkflow.inspect.streams import (
    get_stream_run_details,
    list_stream_runs,
    stream_of_run,
    stream_run_json,
)

__all__ = ["api_routes"]


def _params(request: Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return params


async def runs(request: Request) -> Response:
    """One page of runs: the filters of ``params.py``, newest first."""
    query = run_query(_params(request))
    ctx = Context.of(request)
    page = await list_runs(
        await ctx.storage(), query.filter, limit=query.limit, before=query.before
    )
    return JSONResponse(page.to_json())


async def counts(request: Request) -> Response:
    """Runs per status, of one workflow or all, optionally since a time."""
    since = request.query_params.get("since")
    found = await status_counts(
        await Context.of(request).storage(),
        workflow=request.query_params.get("workflow") or None,
        since=None if not since else parse_moment("since", since, Context.now()),
    )
    return JSONResponse(found.to_json())


async def run(request: Request) -> Response:
    """Everything about one run, with its timeline spans and marks.

    A run that drives a stream run (``pyworkflow.stream``) has it under ``stream_run``, as
    ``pyworkflow runs show --json`` does.
    """
    ctx = Context.of(request)
    storage = await ctx.storage()
    run_id = request.path_params["run_id"]
    codec = await ctx.codec()
    details = await get_run_details(storage, run_id, codec=codec)
    document = details.to_json()
    stream = await stream_of_run(storage, details.run.workflow, details.arguments, codec=codec)
    if stream is not None:
        document["stream_run"] = stream.to_json()
    return JSONResponse(document)


async def history(request: Request) -> Response:
    """The run's event log as stored (``after_seq`` for the events after one)."""
    after = request.query_params.get("after_seq", "0")
    if not after.isdigit():
        raise InputError(f"after_seq={after!r} is not a whole number")
    found = await get_history(
        await Context.of(request).storage(), request.path_params["run_id"], after_seq=int(after)
    )
    return JSONResponse(found.to_json())


async def value(request: Request) -> Response:
    """A run's whole ``args`` or ``result``, decoded (raw stored form when undecodable)."""
    ctx = Context.of(request)
    name = request.path_params["name"]
    if name not in ("args", "result"):
        raise InputError(f"value {name!r} is not one of args, result")
    decoded = await get_decoded_run(
        await ctx.storage(), request.path_params["run_id"], codec=await ctx.codec()
    )
    found = decoded.arguments if name == "args" else decoded.result
    return JSONResponse(jsonable(found))


async def children(request: Request) -> Response:
    """One page of the runs a run started, newest first."""
    query = run_query(_params(request))
    page = await list_children(
        await Context.of(request).storage(),
        request.path_params["run_id"],
        limit=query.limit,
        before=query.before,
    )
    return JSONResponse(page.to_json())


async def chain(request: Request) -> Response:
    """The continue-as-new chain the run belongs to, first run to last."""
    ctx = Context.of(request)
    found = await get_chain(
        await ctx.storage(), request.path_params["run_id"], codec=await ctx.codec()
    )
    return JSONResponse(found.to_json())


async def hooks(request: Request) -> Response:
    """Hooks newest first, of one run and/or in one status; never a token."""
    status = request.query_params.get("status") or None
    try:
        wanted = None if status is None else HookStatus(status)
    except ValueError:
        raise InputError(f"status={status!r} is not a hook status") from None
    found = await list_hooks(
        await Context.of(request).storage(),
        run_id=request.query_params.get("run_id") or None,
        status=wanted,
    )
    return JSONResponse({"hooks": [hook_json(h) for h in found]})


async def workflows(request: Request) -> Response:
    """Every workflow seen in storage or registered here, with counts and percentiles."""
    ctx = Context.of(request)
    found = await workflow_stats(await ctx.storage(), registered=ctx.registered())
    return JSONResponse({"workflows": [s.to_json() for s in found]})


async def workflow_counts(request: Request) -> Response:
    """Runs per status of every workflow in storage or registered here (all their runs)."""
    ctx = Context.of(request)
    found = await workflows_status_counts(await ctx.storage(), ctx.registered())
    return JSONResponse({"workflows": {name: c.to_json() for name, c in found.items()}})


async def schedules(request: Request) -> Response:
    """Schedules by id (``status``, ``workflow`` to narrow; deleted ones only when asked)."""
    status = request.query_params.get("status") or None
    try:
        wanted = None if status is None else ScheduleStatus(status)
    except ValueError:
        known = ", ".join(s.value for s in ScheduleStatus)
        raise InputError(f"status={status!r} is not a schedule status; one of {known}") from None
    found = await list_schedules(
        await Context.of(request).storage(),
        status=wanted,
        workflow=request.query_params.get("workflow") or None,
    )
    return JSONResponse({"schedules": [s.to_json() for s in found]})


async def schedule(request: Request) -> Response:
    """One schedule, deleted or not."""
    storage = await Context.of(request).storage()
    found = await get_schedule(storage, request.path_params["schedule_id"])
    return JSONResponse(found.to_json())


async def schedule_change(request: Request) -> Response:
    """Pause or resume a schedule (the last part of the path says which)."""
    body = await _write(request)
    if isinstance(body, Response):
        return body
    action = request.url.path.rsplit("/", 1)[-1]
    found = await actions.change_schedule(request.path_params["schedule_id"], action)
    return JSONResponse(found)


async def schedule_trigger(request: Request) -> Response:
    """Start a run of the schedule now, outside its slots."""
    body = await _write(request)
    if isinstance(body, Response):
        return body
    found = await actions.trigger(request.path_params["schedule_id"])
    return JSONResponse(found, status_code=201)


async def schedule_backfill(request: Request) -> Response:
    """Start the runs of every slot from ``{"start": ..., "end": ...}`` (end: now if absent).

    Each is an ISO 8601 date-time (UTC without an offset) or a duration back from now (``2d``).
    """
    body = await _write(request)
    if isinstance(body, Response):
        return body
    now = Context.now()
    moments = []
    for name, default in (("start", None), ("end", "0s")):
        text = body.get(name, default)
        if not isinstance(text, str) or not text.strip():
            raise InputError(
                f'the body needs "{name}": an ISO date-time (2024-05-01T00:00:00Z) or a '
                "duration back from now (2d)"
            )
        moments.append(parse_moment(name, text, now))
    found = await actions.backfill(request.path_params["schedule_id"], *moments)
    return JSONResponse(found, status_code=201)


async def schedule_delete(request: Request) -> Response:
    """Delete the schedule: it starts nothing more; its runs go on."""
    body = await _write(request)
    if isinstance(body, Response):
        return body
    return JSONResponse(await actions.delete(request.path_params["schedule_id"]))


async def streams(request: Request) -> Response:
    """Stream runs newest first (``stream`` to narrow to one stream, ``limit`` 1 to 500)."""
    text = request.query_params.get("limit", "100")
    if not text.isdigit() or not 1 <= int(text) <= 500:
        raise InputError(f"limit={text!r} is not a whole number from 1 to 500")
    found = await list_stream_runs(
        await Context.of(request).storage(),
        stream=request.query_params.get("stream") or None,
        limit=int(text),
    )
    return JSONResponse({"stream_runs": [stream_run_json(r) for r in found]})


async def stream_run(request: Request) -> Response:
    """One stream run: its subscriptions and latest signals (``pyworkflow streams show``)."""
    ctx = Context.of(request)
    found = await get_stream_run_details(
        await ctx.storage(), request.path_params["stream_run_id"], codec=await ctx.codec()
    )
    return JSONResponse(found.to_json())


async def meta(request: Request) -> Response:
    """What this dashboard allows: ``writable`` (started with a write token)."""
    return JSONResponse({"writable": Context.of(request).guard.writable})


async def openapi(request: Request) -> Response:
    """The OpenAPI 3.1 document of this API."""
    return JSONResponse(openapi_document())


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"the request body is not JSON ({exc.msg})") from None
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    return body


async def _write(request: Request) -> Response | dict[str, Any]:
    """The JSON body of a write, or the 403 answer when the request may not write."""
    refusal = Context.of(request).guard.refusal(request)
    if refusal is not None:
        return JSONResponse({"error": "Forbidden", "message": refusal.reason}, status_code=403)
    return await _body(request)


async def cancel(request: Request) -> Response:
    """Ask the run to stop (``{"reason": TEXT}`` optional)."""
    body = await _write(request)
    if isinstance(body, Response):
        return body
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise InputError("reason must be a string")
    return JSONResponse(await actions.cancel_run(request.path_params["run_id"], reason))


async def resume(request: Request) -> Response:
    """Reopen a failed run."""
    body = await _write(request)
    if isinstance(body, Response):
        return body
    return JSONResponse(await actions.resume_run(request.path_params["run_id"]))


async def rerun(request: Request) -> Response:
    """Start a new run of the same workflow with the same arguments."""
    body = await _write(request)
    if isinstance(body, Response):
        return body
    ctx = Context.of(request)
    found = await actions.rerun(request.path_params["run_id"], await ctx.codec())
    return JSONResponse(found, status_code=201)


async def deliver(request: Request) -> Response:
    """Deliver ``{"hook_id": ID, "payload": JSON}`` to the run's waiting hook."""
    body = await _write(request)
    if isinstance(body, Response):
        return body
    hook_id = body.get("hook_id")
    if not isinstance(hook_id, str) or not hook_id:
        raise InputError('the body needs "hook_id": the id of the hook, e.g. "hook:approval#1"')
    found = await actions.deliver_hook(request.path_params["run_id"], hook_id, body.get("payload"))
    return JSONResponse(found)


def api_routes() -> list[Route]:
    """The routes of ``/api``."""
    return [
        Route("/api/openapi.json", openapi),
        Route("/api/meta", meta),
        Route("/api/runs", runs),
        Route("/api/runs/counts", counts),
        Route("/api/runs/{run_id}", run),
        Route("/api/runs/{run_id}/history", history),
        Route("/api/runs/{run_id}/values/{name}", value),
        Route("/api/runs/{run_id}/children", children),
        Route("/api/runs/{run_id}/chain", chain),
        Route("/api/runs/{run_id}/cancel", cancel, methods=["POST"]),
        Route("/api/runs/{run_id}/resume", resume, methods=["POST"]),
        Route("/api/runs/{run_id}/rerun", rerun, methods=["POST"]),
        Route("/api/runs/{run_id}/hooks/deliver", deliver, methods=["POST"]),
        Route("/api/hooks", hooks),
        Route("/api/streams", streams),
        Route("/api/streams/{stream_run_id}", stream_run),
        Route("/api/workflows", workflows),
        Route("/api/workflows/counts", workflow_counts),
        Route("/api/schedules", schedules),
        Route("/api/schedules/{schedule_id}", schedule),
        Route("/api/schedules/{schedule_id}", schedule_delete, methods=["DELETE"]),
        Route("/api/schedules/{schedule_id}/pause", schedule_change, methods=["POST"]),
        Route("/api/schedules/{schedule_id}/resume", schedule_change, methods=["POST"]),
        Route("/api/schedules/{schedule_id}/trigger", schedule_trigger, methods=["POST"]),
        Route("/api/schedules/{schedule_id}/backfill", schedule_backfill, methods=["POST"]),
    ]
