"""The replay checker: will the runs in flight resume under today's code?

A run's history is replayed through the engine's own pure replay (``WorkflowActivation``), as a
worker would after a deploy, and the first divergence is reported: its position in the run's
sequence of commands, the command the log holds there and the one the code issues now (the
fields of ``NonDeterminismError``). Nothing executes (no step, no timer) and nothing is written.
``patched`` / ``deprecate_patch`` replay exactly as they do in a worker.

What counts as a divergence:

- the code issues a command (kind and name; arguments are not compared) other than the one
  the log holds at that position, or stops issuing a logged one;
- for a history that recorded the run's end as completed or cancelled, the code must end the
  same way at the same point: issuing something the log never saw, waiting on something, or
  ending otherwise is a divergence too. A failed run's end may come from the engine (e.g. a
  worker that kept dying), so only its commands are checked.

A history in flight may of course end in commands the log has not seen yet: those are what
the run does next.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from pyworkflow import registry
from pyworkflow._engine.activation import WorkflowActivation
from pyworkflow._engine.commands import Turn
from pyworkflow._engine.replay import command_signature, describe_command
from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import (
    InputError,
    NonDeterminismError,
    PyWorkflowError,
    RunNotFoundError,
)
from pyworkflow.serialization import Codec
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import EventRecord, RunCursor
from pyworkflow.testing._history import History, as_records
from pyworkflow.workflow import Workflow

__all__ = ["ReplayResult", "replay_history", "replay_run", "replay_runs"]

_CHECKED_ENDS = {
    EventType.WORKFLOW_COMPLETED: "completed",
    EventType.WORKFLOW_CANCELLED: "cancelled",
}
_ENDS = frozenset(
    {
        EventType.WORKFLOW_COMPLETED,
        EventType.WORKFLOW_FAILED,
        EventType.WORKFLOW_CANCELLED,
        EventType.WORKFLOW_CONTINUED_AS_NEW,
    }
)
_PAGE = 500


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """How one history replayed against the current code.

    Attributes:
        run_id: the run.
        workflow_name: its workflow.
        event_count: how many events its history holds.
        divergence: the first divergence (``position``, ``logged``, ``issued``), or None.
        error: why the history could not be replayed at all (e.g. its arguments cannot be
            decoded here), or None.
    """

    run_id: str
    workflow_name: str
    event_count: int
    divergence: NonDeterminismError | None = None
    error: PyWorkflowError | None = None

    @property
    def ok(self) -> bool:
        """True when the history replayed without divergence or error."""
        return self.divergence is None and self.error is None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary of the result.

        Keys: ``run_id``, ``workflow``, ``events``, ``ok``, ``divergence`` (``position``,
        ``logged``, ``issued``, ``message``) and ``error`` (``type``, ``message``), the last
        two null when absent.
        """
        divergence = self.divergence
        return {
            "run_id": self.run_id,
            "workflow": self.workflow_name,
            "events": self.event_count,
            "ok": self.ok,
            "divergence": None
            if divergence is None
            else {
                "position": divergence.position,
                "logged": divergence.logged,
                "issued": divergence.issued,
                "message": str(divergence),
            },
            "error": None
            if self.error is None
            else {"type": type(self.error).__name__, "message": str(self.error)},
        }


class _ReplayClock:
    """Time for commands issued past the log's end; a replay never waits."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        raise AssertionError("the replay checker never waits on a timer")

    async def skip_to(self, deadline: float) -> bool:
        return False


# --- replaying -----------------------------------------------------------------------------------


async def replay_history(
    workflow: Workflow[..., Any] | str,
    events: History,
    *,
    codec: Codec | None = None,
) -> ReplayResult:
    """Replay one recorded history against the current code of ``workflow``.

    Example:
        >>> history = load_history("checkout-run.json")
        >>> result = await replay_history(checkout, history)
        >>> result.ok or print(result.divergence)

    Args:
        workflow: the workflow (or its registered name) whose current code replays the log;
            it need not be the one that recorded it, so a new version can be tried out.
        events: the run's events from ``get_workflow_events``, ``Storage.load_events`` or
            ``load_history``.
        codec: decodes the logged values; pass one with your ``secret_key`` when the log
            holds signed pickles. Default: ``Codec()``.

    Returns:
        A ``ReplayResult``; ``divergence`` is set when the code no longer matches the log.

    Raises:
        InputError: the events do not form a history (empty, not starting with
            WORKFLOW_STARTED, seqs out of order).
        WorkflowNotFoundError: no workflow is registered under the name given.
        SerializationError: the run's arguments cannot be decoded here.
    """
    definition = registry.get_workflow(workflow) if isinstance(workflow, str) else workflow
    records = as_records(events)
    first = records[0]
    codec = codec or Codec()
    call = codec.decode(first.payload.get("args", {"args": [], "kwargs": {}}))
    activation = WorkflowActivation(
        run_id=first.run_id,
        workflow=definition,
        args=tuple(call["args"]),
        kwargs=dict(call["kwargs"]),
        codec=codec,
        clock=_ReplayClock(),
    )
    try:
        turn = activation.replay(records)
        divergence = activation.divergence or _end_divergence(activation, turn, records)
    finally:
        activation.close()
    name = str(first.payload.get("workflow") or definition.name)
    return ReplayResult(first.run_id, name, len(records), divergence=divergence)


async def replay_run(
    storage: Storage,
    run_id: str,
    *,
    workflow: Workflow[..., Any] | None = None,
    codec: Codec | None = None,
) -> ReplayResult:
    """Load a run's history from ``storage`` (opened) and replay it; see ``replay_history``.

    Args:
        storage: an opened storage; only read.
        run_id: the run.
        workflow: the code to replay with; default: the workflow registered under the run's
            workflow name.
        codec: see ``replay_history``.

    Raises:
        RunNotFoundError: no such run.
        WorkflowNotFoundError: the run's workflow is not registered in this process.
    """
    record = await storage.get_run(run_id)
    if record is None:
        raise RunNotFoundError(run_id)
    definition = workflow or registry.get_workflow(record.workflow_name)
    events = await storage.load_events(run_id)
    try:
        return await replay_history(definition, events, codec=codec)
    except PyWorkflowError as exc:
        return ReplayResult(run_id, record.workflow_name, len(events), error=exc)


async def replay_runs(
    storage: Storage,
    *,
    workflow_name: str | Collection[str] | None = None,
    run_ids: Collection[str] | None = None,
    statuses: Collection[RunStatus | str] | None = None,
    codec: Codec | None = None,
    on_result: Callable[[ReplayResult, int], None] | None = None,
) -> list[ReplayResult]:
    """Replay many runs of ``storage`` against the current code, e.g. before a deploy.

    Every argument is checked before the first replay: an unknown run or a workflow not
    registered here raises, it does not show up as a failed result.

    Example:
        >>> results = await replay_runs(storage, workflow_name="checkout", statuses=["suspended"])
        >>> all(result.ok for result in results)
        True

    Args:
        storage: an opened storage; only read.
        workflow_name: the runs of this workflow (or these); default: every run's workflow.
        run_ids: exactly these runs instead (not together with ``workflow_name``).
        statuses: only runs in these statuses (e.g. the ones still in flight).
        codec: see ``replay_history``.
        on_result: called after each run with its result and the number of runs to replay
            (for a progress bar).

    Returns:
        One result per run, newest run first (in the order given for ``run_ids``).

    Raises:
        InputError: both ``run_ids`` and ``workflow_name``, or an unknown status.
        RunNotFoundError: a run id that names no run.
        WorkflowNotFoundError: a workflow (named, or of a run) not registered here.
    """
    if run_ids is not None and workflow_name is not None:
        raise InputError("pass run_ids or workflow_name, not both")
    if run_ids is not None:
        chosen = await _check_run_ids(storage, run_ids)
    else:
        chosen = await _list_run_ids(storage, workflow_name, _statuses(statuses))
    results: list[ReplayResult] = []
    for run_id in chosen:
        result = await replay_run(storage, run_id, codec=codec)
        results.append(result)
        if on_result is not None:
            on_result(result, len(chosen))
        await asyncio.sleep(0)  # replays are CPU-bound: let the loop breathe between runs
    return results


def _statuses(given: Collection[RunStatus | str] | None) -> list[RunStatus] | None:
    if given is None:
        return None
    try:
        return [RunStatus(s) for s in given]
    except ValueError as exc:
        known = ", ".join(s.value for s in RunStatus)
        raise InputError(f"unknown run status in {sorted(map(str, given))!r}; use {known}") from exc


async def _check_run_ids(storage: Storage, run_ids: Collection[str]) -> list[str]:
    for run_id in run_ids:
        record = await storage.get_run(run_id)
        if record is None:
            raise RunNotFoundError(run_id)
        registry.get_workflow(record.workflow_name)
    return list(run_ids)


async def _list_run_ids(
    storage: Storage,
    workflow_name: str | Collection[str] | None,
    statuses: list[RunStatus] | None,
) -> list[str]:
    names: list[str | None]
    if workflow_name is None:
        names = [None]
    else:
        names = [workflow_name] if isinstance(workflow_name, str) else list(workflow_name)
        for name in names:
            assert name is not None
            registry.get_workflow(name)
    found: list[str] = []
    for name in names:
        cursor: RunCursor | None = None
        while True:
            page = await storage.list_runs(
                statuses=statuses, workflow_name=name, limit=_PAGE, before=cursor
            )
            for record in page:
                if name is None:
                    registry.get_workflow(record.workflow_name)
                found.append(record.run_id)
            if len(page) < _PAGE:
                break
            cursor = RunCursor(page[-1].created_at, page[-1].run_id)
    return found


def _end_divergence(
    activation: WorkflowActivation, turn: Turn, records: Sequence[EventRecord]
) -> NonDeterminismError | None:
    """A history that recorded a completed or cancelled end must end there again."""
    end = _recorded_end(records)
    if end is None or end.type not in _CHECKED_ENDS:
        return None
    logged = f"the workflow's end ({_CHECKED_ENDS[end.type]})"
    # Every logged command matched (else there is a divergence already), so the first new
    # command, if any, sits right after them.
    position = activation.position - len(turn.events)
    if turn.events:
        issued = describe_command(*command_signature(turn.events[0]))
    elif not turn.finished:
        waits = [describe_command(c.kind, c.name) for c in activation.pending()]
        issued = f"a wait on {', '.join(waits)}" if waits else "a wait"
    elif turn.cancelled != (end.type is EventType.WORKFLOW_CANCELLED) or turn.error is not None:
        how = "cancelled" if turn.cancelled else "completed"
        if turn.error is not None:
            how = f"failed: {turn.error.get('type')}: {turn.error.get('message')}"
        issued = f"the workflow's end ({how})"
    else:
        return None
    return NonDeterminismError(activation.run_id, position, logged, issued)


def _recorded_end(records: Sequence[EventRecord]) -> EventRecord | None:
    """The event that ended the run, unless a later WORKFLOW_RESUMED re-opened it."""
    for event in reversed(records):
        if event.type in _ENDS:
            return event
        if event.type is EventType.WORKFLOW_RESUMED:
            return None
    return None
