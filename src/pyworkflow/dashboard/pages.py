"""The HTML pages: runs, a run, workflows, schedules, the login form; their forms post writes.

Rendered server-side with Jinja2, autoescaping on: every value from storage reaches the page
as text. A write from a form needs the session cookie and the form's CSRF value
(``guard.py``); after it the browser is sent back to the run's (or the schedules) page with a
notice (a fixed
message chosen by key, never text from the request).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from pyworkflow.dashboard import actions
from pyworkflow.dashboard.context import Context
from pyworkflow.dashboard.display import preview, shown
from pyworkflow.dashboard.errors import status_of
from pyworkflow.dashboard.guard import COOKIE, CSRF_FIELD
from pyworkflow.dashboard.params import parse_moment, run_query
from pyworkflow.dashboard.svg import duration_chart, timeline_svg
from pyworkflow.events import RunStatus
from pyworkflow.exceptions import InputError, PyWorkflowError
from pyworkflow.inspect import (
    CHILDREN_SHOWN,
    format_duration,
    format_time,
    get_chain,
    get_decoded_run,
    get_run_details,
    get_schedule,
    list_children,
    list_runs,
    list_schedules,
    workflow_stats,
)
from pyworkflow.inspect.streams import (
    DRIVER_WORKFLOW,
    get_stream_run,
    stream_of_run,
    stream_run_id_of,
)
from pyworkflow.serialization import Codec
from pyworkflow.storage import Storage, StreamRunRecord

__all__ = ["CHAIN_REACH", "EVENTS_SHOWN", "STEPS_SHOWN", "page_routes", "render"]

EVENTS_SHOWN = 100
"""Events a run's page lists, the first and last half (``?events=all``: every one)."""

STEPS_SHOWN = 100
"""Step attempts a run's page lists, the first and last half (``?steps=all``: every one)."""

CHAIN_REACH = 100
"""Runs of a continue-as-new chain a run's page links each way; the last links on."""

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
_templates.filters["time"] = format_time
_templates.filters["duration"] = lambda s: "-" if s is None else format_duration(s)
_templates.filters["preview"] = preview

_NOTICES = {
    "cancelled": "Cancellation requested: the run stops at its next step, sleep or hook.",
    "not-cancelled": "The run had already ended: nothing to cancel.",
    "resumed": "Resumed: a worker runs its failed steps again.",
    "delivered": "Payload delivered: a worker continues the run.",
    "rerun": "Started a new run with the same arguments.",
    "signed-in": "Signed in: you can change runs.",
    "schedule-paused": "Schedule paused: it starts no runs until it is resumed.",
    "schedule-resumed": "Schedule resumed: it starts runs again from its next slot.",
    "schedule-triggered": "Started a run of the schedule now; its regular slots are unchanged.",
    "schedule-backfilled": (
        "Backfilled: every slot of the range has its run (a slot that had one keeps it); "
        "workers run them."
    ),
    "schedule-deleted": "Schedule deleted: it starts nothing more; its runs go on.",
}


async def render(request: Request, name: str, status_code: int = 200, **values: Any) -> Response:
    """The template ``name`` with ``values`` and what every page shows."""
    ctx = Context.of(request)
    values.update(
        request=request,
        writable=ctx.guard.writable,
        signed_in=ctx.guard.signed_in(request),
        csrf=ctx.guard.csrf_value() if ctx.guard.signed_in(request) else "",
        csrf_field=CSRF_FIELD,
        notice=_NOTICES.get(request.query_params.get("notice", "")),
    )
    html = _templates.get_template(name).render(**values)
    return HTMLResponse(html, status_code=status_code)


def _params(request: Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return params


async def home(request: Request) -> Response:
    """``/``: the runs page."""
    return RedirectResponse("/runs", status_code=307)


async def runs_page(request: Request) -> Response:
    """Runs with filters, counts per status (kept live by the page's script) and paging."""
    ctx = Context.of(request)
    storage = await ctx.storage()
    try:
        query = run_query(_params(request))
    except InputError as exc:
        return await render(request, "error.html", 400, title="Bad filter", message=str(exc))
    page = await list_runs(storage, query.filter, limit=query.limit, before=query.before)
    # The counts per status (of every run, or of the workflow filtered on: each reads one
    # index alone) come from /api/runs/counts, which the page's script asks at once and then
    # every 2 s: the list shows without waiting for them.
    return await render(
        request,
        "runs.html",
        page=page,
        query=query,
        given=dict(query.given),
        statuses=[s.value for s in RunStatus],
        chosen={s.value for s in query.filter.statuses},
        workflows=await ctx.workflow_names(),
    )


def _ends(items: list[Any], limit: int | None) -> tuple[list[Any], int, list[Any]]:
    """The first and last of ``items``, ``limit`` in all, and how many are left between."""
    if limit is None or len(items) <= limit:
        return items, 0, []
    half = limit // 2
    return items[:half], len(items) - limit, items[len(items) - (limit - half) :]


async def run_page(request: Request, *, error: str | None = None, code: int = 200) -> Response:
    """One run: its values, timeline picture, events, family, hooks and buttons.

    A long run shows the first and last of its events and step attempts (``?events=all``,
    ``?steps=all`` for every one), its children a page at a time (``?children_before=``), and
    its whole continue-as-new chain (up to ``CHAIN_REACH`` runs each way, then a link on).
    """
    ctx = Context.of(request)
    storage = await ctx.storage()
    run_id = request.path_params["run_id"]
    every_event = request.query_params.get("events") == "all"
    codec = await ctx.codec()
    details = await get_run_details(
        storage, run_id, codec=codec, timeline_limit=None if every_event else EVENTS_SHOWN
    )
    bars, marks = details.spans, details.marks
    start = details.timeline[0].timestamp if details.timeline else details.run.created_at
    end = details.run.completed_at or Context.now()
    end = max([end, *(b.end or 0.0 for b in bars), *(m.at for m in marks)])
    children_before = request.query_params.get("children_before") or None
    children, older_children = (
        details.children,
        (details.children[-1].run_id if details.more_children else None),
    )
    if children_before is not None:
        page = await list_children(storage, run_id, limit=CHILDREN_SHOWN, before=children_before)
        children, older_children = page.children, page.next_before
    chain = None
    if details.run.continued_from or details.run.continued_to:
        chain = await get_chain(storage, run_id, codec=codec, reach=CHAIN_REACH)
    stream = await stream_of_run(storage, details.run.workflow, details.arguments, codec=codec)
    steps_head, steps_cut, steps_tail = _ends(
        details.steps, None if request.query_params.get("steps") == "all" else STEPS_SHOWN
    )
    return await render(
        request,
        "run.html",
        code,
        details=details,
        run=details.run,
        events_cut=details.events - len(details.timeline),
        steps_head=steps_head,
        steps_cut=steps_cut,
        steps_tail=steps_tail,
        children=children,
        children_before=children_before,
        older_children=older_children,
        chain=chain,
        args=shown(details.arguments),
        result=None if details.run.status is not RunStatus.COMPLETED else shown(details.result),
        picture=timeline_svg(bars, marks, start=start, end=end),
        error=error,
        can_resume=details.run.status is RunStatus.FAILED,
        can_cancel=not details.run.status.is_terminal,
        stream=stream,
        child_streams=await _child_streams(storage, children, codec),
    )


async def _child_streams(
    storage: Storage, children: list[Any], codec: Codec
) -> dict[str, tuple[str, StreamRunRecord | None]]:
    """For each child run shown that drives a stream run: its id and row (None: not open yet).

    A stream run is a child of the run that called ``run_stream_workflow``: its parent's page
    names it beside the child run, whose own page shows it whole.
    """
    found: dict[str, tuple[str, StreamRunRecord | None]] = {}
    for child in children:
        if child.workflow != DRIVER_WORKFLOW:
            continue
        decoded = await get_decoded_run(storage, child.run_id, codec=codec)
        stream_run_id = stream_run_id_of(child.workflow, decoded.arguments)
        if stream_run_id is not None:
            found[child.run_id] = (stream_run_id, await get_stream_run(storage, stream_run_id))
    return found


async def workflows_page(request: Request) -> Response:
    """Every workflow: runs per status over the last hour and day, success rate, percentiles."""
    ctx = Context.of(request)
    found = await workflow_stats(await ctx.storage(), registered=ctx.registered())
    charts = {s.workflow: duration_chart(s.p50, s.p95, s.p99) for s in found}
    return await render(request, "workflows.html", stats=found, charts=charts)


async def schedules_page(
    request: Request, *, error: str | None = None, code: int = 200
) -> Response:
    """Every schedule but deleted ones: spec, status, next slot, what it started, buttons."""
    found = await list_schedules(await Context.of(request).storage())
    return await render(request, "schedules.html", code, schedules_found=found, error=error)


async def delete_schedule_page(request: Request) -> Response:
    """Asks before a schedule is deleted: the form that deletes it (with the CSRF value)."""
    found = await get_schedule(
        await Context.of(request).storage(), request.path_params["schedule_id"]
    )
    return await render(request, "delete_schedule.html", schedule=found)


async def _form_write(request: Request) -> tuple[dict[str, str], Response | None]:
    """The form's fields, or the answer refusing it (403, nothing changed)."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    refusal = Context.of(request).guard.refusal(request, fields.get(CSRF_FIELD))
    if refusal is None:
        return fields, None
    page = await render(request, "error.html", 403, title="Not allowed", message=refusal.reason)
    return fields, page


def _back(run_id: str, notice: str) -> Response:
    return RedirectResponse(f"/runs/{run_id}?notice={notice}", status_code=303)


async def run_action(request: Request) -> Response:
    """A form's write on a run: cancel, resume, rerun or deliver (``action`` in the path)."""
    fields, refused = await _form_write(request)
    if refused is not None:
        return refused
    run_id, action = request.path_params["run_id"], request.path_params["action"]
    try:
        if action == "cancel":
            done = await actions.cancel_run(run_id, fields.get("reason") or None)
            return _back(run_id, "cancelled" if done["cancel_requested"] else "not-cancelled")
        if action == "resume":
            await actions.resume_run(run_id)
            return _back(run_id, "resumed")
        if action == "rerun":
            started = await actions.rerun(run_id, await Context.of(request).codec())
            return _back(started["run_id"], "rerun")
        if action == "deliver":
            text = fields.get("payload", "").strip() or "null"
            try:
                payload = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f'the payload is not JSON ({exc.msg}); e.g. {{"ok": true}}'
                ) from None
            await actions.deliver_hook(run_id, fields.get("hook_id", ""), payload)
            return _back(run_id, "delivered")
    except PyWorkflowError as exc:
        return await run_page(request, error=f"{type(exc).__name__}: {exc}", code=status_of(exc))
    return await render(request, "error.html", 404, title="Not found", message="no such action")


async def schedule_action(request: Request) -> Response:
    """A form's write on a schedule: pause, resume or trigger (``action`` in the path)."""
    fields, refused = await _form_write(request)
    if refused is not None:
        return refused
    schedule_id, action = request.path_params["schedule_id"], request.path_params["action"]
    try:
        if action == "trigger":
            started = await actions.trigger(schedule_id)
            return _back(started["run_id"], "schedule-triggered")
        if action in ("pause", "resume"):
            await actions.change_schedule(schedule_id, action)
            return RedirectResponse(f"/schedules?notice=schedule-{action}d", status_code=303)
        if action == "backfill":
            now = Context.now()
            start_text = fields.get("start", "").strip()
            if not start_text:
                raise InputError("give the start of the range to backfill")
            start = parse_moment("start", start_text, now)
            end = parse_moment("end", fields.get("end", "").strip() or "0s", now)
            await actions.backfill(schedule_id, start, end)
            where = urlencode({"schedule": schedule_id, "notice": "schedule-backfilled"})
            return RedirectResponse(f"/runs?{where}", status_code=303)
        if action == "delete":
            await actions.delete(schedule_id)
            return RedirectResponse("/schedules?notice=schedule-deleted", status_code=303)
    except PyWorkflowError as exc:
        message = f"{type(exc).__name__}: {exc}"
        return await schedules_page(request, error=message, code=status_of(exc))
    return await render(request, "error.html", 404, title="Not found", message="no such action")


async def login(request: Request) -> Response:
    """The login form (GET) and its check (POST), which sets the session cookie."""
    guard = Context.of(request).guard
    if request.method == "GET":
        return await render(request, "login.html")
    form = await request.form()
    given = form.get("token")
    if not guard.writable or not isinstance(given, str) or not guard.check_login(given):
        return await render(request, "login.html", 403, failed=True)
    answer = RedirectResponse("/runs?notice=signed-in", status_code=303)
    answer.set_cookie(COOKIE, guard.session_value(), httponly=True, samesite="strict", path="/")
    return answer


async def logout(request: Request) -> Response:
    """Drop the session cookie."""
    answer = RedirectResponse("/runs", status_code=303)
    answer.delete_cookie(COOKIE, path="/")
    return answer


def page_routes() -> list[Route]:
    """The routes of the pages."""
    return [
        Route("/", home),
        Route("/runs", runs_page),
        Route("/runs/{run_id}", run_page),
        Route("/runs/{run_id}/{action}", run_action, methods=["POST"]),
        Route("/workflows", workflows_page),
        Route("/schedules", schedules_page),
        Route("/schedules/{schedule_id}/delete", delete_schedule_page, methods=["GET"]),
        Route("/schedules/{schedule_id}/{action}", schedule_action, methods=["POST"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
