"""What commands print for people: ``rich`` tables, colour on terminals, plain text in pipes.

Machines use ``--json`` instead (``cli/json_output.py``); nothing here is a stable format. Markup is
off, so text from the database (error messages, values) is printed as it is, brackets and all.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pyworkflow.hooks import HookInfo
from pyworkflow.inspect import (
    ChildrenPage,
    RunChain,
    RunDetails,
    RunPage,
    RunView,
    Undecodable,
    WorkflowView,
    format_call,
    format_duration,
    format_time,
    jsonable,
    short,
)
from pyworkflow.storage import EventRecord

__all__ = [
    "console",
    "print_chain",
    "print_children",
    "print_history",
    "print_hooks",
    "print_run",
    "print_run_family",
    "print_runs",
    "print_workflow",
    "print_workflows",
    "status_text",
]

_STATUS_STYLES = {
    "pending": "dim",
    "running": "cyan",
    "suspended": "magenta",
    "completed": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    "continued_as_new": "blue",
}
_HOOK_STYLES = {"waiting": "magenta", "received": "green", "expired": "yellow"}
_OUTCOME_STYLES = {"completed": "green", "failed": "bold red", "retried": "yellow"}
_POLICIES = {
    "cancel": "cancel (cancelled if the parent ends first)",
    "abandon": "abandon (runs on if the parent ends first)",
}


def console() -> Console:
    """A console on stdout; in a pipe it is wide, so that ids are never folded for ``grep``."""
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(markup=False, emoji=False, highlight=False, width=200 if wide else None)


def status_text(status: str) -> Text:
    """A run status, coloured on terminals."""
    return Text(status, style=_STATUS_STYLES.get(status, ""))


def _table(*columns: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in columns:
        table.add_column(column, no_wrap=column in ("RUN ID", "STEP", "HOOK ID"))
    return table


def _took(run: RunView) -> str:
    return "-" if run.took is None else format_duration(run.took)


def _queue_text(run: RunView) -> Text:
    if not run.waits_for_worker:
        return Text(run.queue)
    return Text(f"{run.queue} (waiting for a worker)", style="yellow")


def _waiting_note(queue: str, who: str) -> str:
    return (
        f"{who} for a worker of queue {queue!r} "
        f"(one serves it with: pyworkflow worker run -Q {queue})"
    )


def print_runs(out: Console, page: RunPage) -> None:
    """``runs list``: one row per run, then the queues runs wait on, and the next page."""
    if not page.runs:
        out.print("no runs match")
        return
    table = _table("RUN ID", "WORKFLOW", "STATUS", "QUEUE", "CREATED (UTC)", "TOOK")
    waiting: dict[str, int] = {}
    for r in page.runs:
        table.add_row(
            r.run_id,
            r.workflow,
            status_text(r.status.value),
            _queue_text(r),
            format_time(r.created_at),
            _took(r),
        )
        if r.waits_for_worker:
            waiting[r.queue] = waiting.get(r.queue, 0) + 1
    out.print(table)
    for queue, count in sorted(waiting.items()):
        who = "1 run waits" if count == 1 else f"{count} runs wait"
        out.print(_waiting_note(queue, who), soft_wrap=True)
    for r in page.runs:
        if r.damage is not None:
            out.print(Text(f"damaged: {r.damage}", style="bold red"), soft_wrap=True)
    if page.next_before is not None:
        out.print(f"more runs: add --before {page.next_before}")


def _pretty(value: Any) -> str:
    if isinstance(value, Undecodable):
        return short(value, limit=1000)
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False)


def print_run(out: Console, details: RunDetails) -> None:
    """``runs show``: the run, its arguments and outcome, its timeline and step attempts.

    What of the run cannot be read or shown (its row, its log) is printed by its status.
    """
    run = details.run
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("run", run.run_id)
    facts.add_row("workflow", run.workflow)
    facts.add_row("status", status_text(run.status.value))
    facts.add_row("queue", _queue_text(run))
    if run.waits_for_worker:
        facts.add_row("waiting", _waiting_note(run.queue, "this run waits"))
    for offer in details.offered_steps:
        step = f"step {offer.step_id} (attempt {offer.attempt})"
        if offer.executed_by is None:
            facts.add_row("waiting", _waiting_note(offer.queue, f"{step} waits"))
        else:
            facts.add_row("away", f"{step} runs on {offer.executed_by} (queue {offer.queue!r})")
    if details.damage is not None:
        facts.add_row("damaged", Text(details.damage, style="bold red"))
    facts.add_row("created", f"{format_time(run.created_at)} UTC")
    if run.completed_at is not None:
        facts.add_row("ended", f"{format_time(run.completed_at)} UTC (took {_took(run)})")
    if run.wake_at is not None:
        facts.add_row("wakes", f"{format_time(run.wake_at)} UTC")
    if run.idempotency_key:
        facts.add_row("idempotency key", run.idempotency_key)
    if run.schedule_id:
        slot = format_time(run.schedule_slot_at)
        facts.add_row("schedule", f"{run.schedule_id} (slot {slot} UTC)")
    if run.parent_run_id:
        facts.add_row("parent run", run.parent_run_id)
    if run.parent_close_policy:
        facts.add_row(
            "parent close", _POLICIES.get(run.parent_close_policy, run.parent_close_policy)
        )
    if run.continued_from:
        facts.add_row("continued from", run.continued_from)
    if run.continued_to:
        facts.add_row("continued to", run.continued_to)
    if run.recovery_count:
        facts.add_row("recoveries", str(run.recovery_count))
    if run.cancel_requested and not run.status.is_terminal:
        facts.add_row("cancel", f"requested: {run.cancel_reason or 'no reason given'}")
    facts.add_row("args", format_call(run.workflow, details.arguments))
    if run.status.value == "completed":
        facts.add_row("result", _pretty(details.result))
    if run.error:
        facts.add_row("error", f"{run.error.get('type', '?')}: {run.error.get('message', '')}")
    out.print(facts)
    if run.error and run.error.get("traceback"):
        out.print()
        out.print(Text(str(run.error["traceback"]).rstrip(), style="red"))
    out.print()
    timeline = _table("SEQ", "AT (UTC)", "+PREV", "+START", "EVENT", "DETAIL")
    for e in details.timeline:
        timeline.add_row(
            str(e.seq),
            format_time(e.timestamp, precise=True),
            format_duration(e.since_previous),
            format_duration(e.since_start),
            e.type,
            e.summary,
        )
    out.print(Text("Timeline", style="bold"))
    out.print(timeline)
    if details.steps:
        steps = _table("STEP", "ATTEMPT", "STARTED (UTC)", "TOOK", "OUTCOME", "ERROR")
        for a in details.steps:
            error = f"{a.error.get('type', '?')}: {a.error.get('message', '')}" if a.error else ""
            steps.add_row(
                a.step_id,
                str(a.attempt),
                format_time(a.started_at, precise=True),
                "-" if a.duration is None else format_duration(a.duration),
                Text(a.outcome, style=_OUTCOME_STYLES.get(a.outcome, "")),
                error,
            )
        out.print(Text("Step attempts", style="bold"))
        out.print(steps)


def _when(moment: datetime | None) -> str:
    return format_time(None if moment is None else moment.timestamp())


def _hooks_table(hooks: Sequence[HookInfo], *, with_run: bool) -> Table:
    columns = ["HOOK ID", "NAME", "STATUS", "PAYLOAD TYPE", "CREATED (UTC)", "EXPIRES (UTC)"]
    table = _table(*(["RUN ID"] if with_run else []), *columns, "RECEIVED (UTC)")
    now = time.time()
    for h in hooks:
        expires = _when(h.expires_at)
        if h.status.value == "waiting" and h.expires_at and h.expires_at.timestamp() <= now:
            # Past its timeout, but the run's worker has not marked it expired yet.
            expires += " (passed)"
        table.add_row(
            *([h.run_id] if with_run else []),
            h.hook_id,
            h.name,
            Text(h.status.value, style=_HOOK_STYLES.get(h.status.value, "")),
            h.payload_type or "-",
            _when(h.created_at),
            expires,
            _when(h.received_at),
        )
    return table


def print_hooks(out: Console, hooks: Sequence[HookInfo]) -> None:
    """``hooks list``: one row per hook, newest first; tokens are not stored, so never shown."""
    if not hooks:
        out.print("no hooks match")
        return
    out.print(_hooks_table(hooks, with_run=True))


def _children_table(runs: Sequence[RunView]) -> Table:
    table = _table("RUN ID", "WORKFLOW", "STATUS", "POLICY", "CREATED (UTC)", "ENDED (UTC)")
    for r in runs:
        table.add_row(
            r.run_id,
            r.workflow,
            status_text(r.status.value),
            r.parent_close_policy or "-",
            format_time(r.created_at),
            format_time(r.completed_at),
        )
    return table


def print_run_family(out: Console, details: RunDetails) -> None:
    """``runs show``, after the timeline: the run's children and the hooks it waits on."""
    if details.children:
        out.print(Text("Children (newest first)", style="bold"))
        out.print(_children_table(details.children))
        if details.more_children:
            out.print(f"more children: pyworkflow runs children {details.run.run_id}")
    if details.waiting_hooks:
        out.print(Text("Waiting hooks", style="bold"))
        out.print(_hooks_table(details.waiting_hooks, with_run=False))


def print_children(out: Console, page: ChildrenPage, *, paged: bool = False) -> None:
    """``runs children``: a run's child runs, newest first, then how to get the next page."""
    if not page.children:
        out.print(f"run {page.run_id} has {'no more' if paged else 'no'} child runs")
        return
    out.print(_children_table(page.children))
    if page.next_before is not None:
        out.print(f"more children: add --before {page.next_before}")


def print_chain(out: Console, chain: RunChain) -> None:
    """``runs chain``: the continue-as-new chain first to last, ``>`` marking the run asked for."""
    if chain.pruned_before:
        out.print(f"(continued from run {chain.pruned_before}, which is no longer stored)")
    table = _table("", "#", "RUN ID", "STATUS", "CREATED (UTC)", "TOOK", "ARGS")
    for position, link in enumerate(chain.links, start=1):
        r = link.run
        table.add_row(
            ">" if link.given else "",
            str(position),
            r.run_id,
            status_text(r.status.value),
            format_time(r.created_at),
            _took(r),
            format_call(r.workflow, link.arguments),
        )
    out.print(table)
    if chain.pruned_after:
        out.print(f"(continued to run {chain.pruned_after}, which is no longer stored)")


def print_history(out: Console, events: Sequence[EventRecord]) -> None:
    """``runs history``: every event with its payload as stored."""
    table = _table("SEQ", "TIMESTAMP (UTC)", "TYPE", "DATA")
    for e in events:
        data = {k: v for k, v in e.payload.items() if k != "v"}
        table.add_row(
            str(e.seq),
            format_time(e.created_at, precise=True),
            e.type.value,
            json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        )
    out.print(table)


def _duration_or_dash(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def print_workflows(out: Console, described: Sequence[WorkflowView]) -> None:
    """``workflows list``: one row per registered workflow."""
    table = _table("NAME", "PARAMETERS", "MAX DURATION", "STEPS")
    for w in described:
        steps = ", ".join(s.name for s in w.steps) or "-"
        table.add_row(w.name, w.signature, _duration_or_dash(w.max_duration), steps)
    out.print(table)


def print_workflow(out: Console, w: WorkflowView) -> None:
    """``workflows info``: one workflow, its parameters and the steps its code calls."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("workflow", w.name)
    facts.add_row("function", w.function)
    facts.add_row("signature", w.name + w.signature)
    facts.add_row("max duration", _duration_or_dash(w.max_duration))
    if w.doc:
        facts.add_row("doc", w.doc)
    out.print(facts)
    if w.parameters:
        params = _table("PARAMETER", "TYPE", "REQUIRED", "DEFAULT")
        for p in w.parameters:
            params.add_row(
                p.name, p.annotation or "-", "yes" if p.required else "no", p.default or "-"
            )
        out.print(params)
    if w.steps:
        steps = _table("STEP", "MAX RETRIES", "RETRY DELAY", "TIMEOUT", "FORCE LOCAL")
        for s in w.steps:
            delay = s.retry_delay
            if isinstance(delay, list):
                delay = ", ".join(format_duration(d) for d in delay)
            elif not isinstance(delay, str):
                delay = format_duration(delay)
            steps.add_row(
                s.name,
                str(s.max_retries),
                delay,
                _duration_or_dash(s.timeout),
                "yes" if s.force_local else "no",
            )
        out.print(steps)
