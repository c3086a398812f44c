"""The read model: runs, their timelines, step attempts, families and hooks, as readers show them.

Registered workflows too (``describe_workflow``), read from the code rather than storage.

The ``pyworkflow`` command renders these objects as tables and ``--json``; a web dashboard
renders the same ones. Each reader is an async function that takes an opened ``Storage`` (and,
where stored values are decoded, the ``Codec`` of the process) and returns plain frozen
dataclasses: no printing, no terminal, no web framework. Every object that has a JSON form has
a ``to_json()`` returning plain JSON types, with stable keys: keys are only ever added, never
renamed or removed. Times are epoch seconds on the objects and ISO 8601 strings in UTC in
JSON; durations are float seconds; absent values are None / null.

Nothing here fails on what is stored. A damaged row is shown with its ``damage``; a value this
process cannot decode (its class is not importable here, a pickle refused) stays encoded as an
``Undecodable``; an event of a type or shape this version does not know reads as its fields.

Layering: this package reads through the storage protocol and the public modules
(``pyworkflow.storage``, ``events``, ``serialization``, ``hooks``); it imports neither the CLI
nor ``pyworkflow._engine``, and knows no backend.

Example:
    >>> storage = storage_from_url("sqlite:///pyworkflow.db")
    >>> await storage.open()
    >>> page = await list_runs(storage, RunFilter(statuses=(RunStatus.FAILED,)), limit=20)
    >>> details = await get_run_details(storage, page.runs[0].run_id, codec=Codec())
    >>> [entry.summary for entry in details.timeline][-1]
    'ValueError: card declined'
"""

from pyworkflow.inspect.attempts import StepAttempt, step_attempts
from pyworkflow.inspect.details import (
    CHILDREN_SHOWN,
    DecodedRun,
    RunDetails,
    get_decoded_run,
    get_run_details,
)
from pyworkflow.inspect.families import (
    ChainLink,
    ChildrenPage,
    RunChain,
    get_chain,
    list_children,
)
from pyworkflow.inspect.history import RunHistory, event_json, get_history
from pyworkflow.inspect.hooks import hook_json, list_hooks
from pyworkflow.inspect.runs import (
    RunFilter,
    RunPage,
    RunView,
    count_ended_runs,
    get_run,
    iter_runs,
    list_runs,
)
from pyworkflow.inspect.schedules import ScheduleView, get_schedule, list_schedules
from pyworkflow.inspect.spans import Mark, Span, spans
from pyworkflow.inspect.stats import (
    StatusCounts,
    WorkflowStats,
    percentile,
    status_counts,
    workflow_stats,
    workflows_status_counts,
)
from pyworkflow.inspect.summaries import summarize
from pyworkflow.inspect.text import format_call, format_duration, format_time, short
from pyworkflow.inspect.timeline import TimelineEntry, timeline, timeline_ends
from pyworkflow.inspect.values import Undecodable, decode, iso, jsonable
from pyworkflow.inspect.workers import QueueView, WorkerView, live_workers, queue_views
from pyworkflow.inspect.workflows import (
    ParameterView,
    StepView,
    WorkflowView,
    describe_workflow,
    steps_called,
)

__all__ = [
    "CHILDREN_SHOWN",
    "ChainLink",
    "ChildrenPage",
    "DecodedRun",
    "Mark",
    "ParameterView",
    "QueueView",
    "RunChain",
    "RunDetails",
    "RunFilter",
    "RunHistory",
    "RunPage",
    "RunView",
    "ScheduleView",
    "Span",
    "StatusCounts",
    "StepAttempt",
    "StepView",
    "TimelineEntry",
    "Undecodable",
    "WorkerView",
    "WorkflowStats",
    "WorkflowView",
    "count_ended_runs",
    "decode",
    "describe_workflow",
    "event_json",
    "format_call",
    "format_duration",
    "format_time",
    "get_chain",
    "get_decoded_run",
    "get_history",
    "get_run",
    "get_run_details",
    "get_schedule",
    "hook_json",
    "iso",
    "iter_runs",
    "jsonable",
    "list_children",
    "list_hooks",
    "list_runs",
    "list_schedules",
    "live_workers",
    "percentile",
    "queue_views",
    "short",
    "spans",
    "status_counts",
    "step_attempts",
    "steps_called",
    "summarize",
    "timeline",
    "timeline_ends",
    "workflow_stats",
    "workflows_status_counts",
]
