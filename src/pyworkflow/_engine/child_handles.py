"""A child's handle in the workflow that started it: status from the log, cancel as a command.

Workflow code is replayed, so what its handle answers must come from the parent's log, never
from a read of storage (DESIGN §2.2):

- The status is what the log says so far: the child is running from its CHILD_WORKFLOW_STARTED
  until its end (CHILD_WORKFLOW_COMPLETED / _FAILED / _CANCELLED) is logged. The parent logs
  the end of every child it started, awaited or not, at its first turn after the child ended
  (the child's end makes the parent due at once), so the answer is as fresh as the parent's
  turn and the same on every replay, which feeds logged outcomes back at the same points.
- ``cancel()`` is a command, CHILD_WORKFLOW_CANCEL_REQUESTED. Its answer comes from the log
  too: False, recording nothing, once the child's end is logged; else True. The driver makes
  the request on the child's row once the append that logs it is committed (an outside write:
  only the child's lease holder appends to the child's log, DESIGN §7), and a replay does not
  make it again. The next driver of the run makes again a logged request that the child's row
  does not show: its process died, or the request failed, between the append and the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyworkflow._engine import new_events
from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import ChildWorkflowCancelledError, ChildWorkflowFailedError, InputError

if TYPE_CHECKING:
    from pyworkflow._engine.activation import WorkflowActivation
    from pyworkflow._engine.commands import Command
    from pyworkflow._engine.engine import Engine
    from pyworkflow.storage.protocol import Storage
    from pyworkflow.storage.records import EventRecord, RunRecord

__all__ = ["cancel", "logged_status", "request_logged", "request_unanswered"]

_REQUESTED = EventType.CHILD_WORKFLOW_CANCEL_REQUESTED
_CHILD_ENDS = frozenset(
    {
        EventType.CHILD_WORKFLOW_COMPLETED,
        EventType.CHILD_WORKFLOW_FAILED,
        EventType.CHILD_WORKFLOW_CANCELLED,
    }
)


# --- workflow side (pure) ------------------------------------------------------------------------


def logged_status(started: Command) -> RunStatus:
    """The child's status as the parent's log has it so far (``started``: its start command).

    RUNNING until its end is logged, whatever it is doing meanwhile (pending, running or
    suspended are not in the parent's log); then COMPLETED, FAILED or CANCELLED.
    """
    future = started.future
    if not future.done() or future.cancelled():
        return RunStatus.RUNNING
    error = future.exception()
    if error is None:
        return RunStatus.COMPLETED
    if isinstance(error, ChildWorkflowCancelledError):
        return RunStatus.CANCELLED
    if isinstance(error, ChildWorkflowFailedError):
        return RunStatus.FAILED
    # This run's own cancellation stopped the wait (CancellationError): no end is logged.
    return RunStatus.RUNNING


def cancel(activation: WorkflowActivation, started: Command, reason: str | None) -> bool:
    """Issue the cancel of the child ``started`` started; False once its end is logged."""
    if reason is not None and not isinstance(reason, str):
        raise InputError(f"a cancel reason is a string or None, not {reason!r}")
    if logged_status(started).is_terminal:
        return False
    name = started.name
    assert started.target is not None
    command = activation.issue("child_cancel", f"cancel:{name}", name, waits=False)
    if command.logged is None:
        activation.record(
            new_events.child_cancel_requested(
                command.command_id, started.command_id, name, started.target, reason
            ),
            child_cancel=True,
        )
    return True


# --- driver side ---------------------------------------------------------------------------------


async def request_logged(engine: Engine, requests: Sequence[dict[str, Any]]) -> None:
    """Make the cancel requests (event payloads) that a just-committed append logged."""
    for payload in requests:
        await _request(engine, payload)


async def request_unanswered(engine: Engine, events: Sequence[EventRecord]) -> None:
    """When a driver takes the run: make again each logged request the child's row lacks.

    The driver that logged it died (or its request failed) before the request was made. Only
    requests whose child's end is not logged are looked at, and one the child holds already
    (its row has a cancel request, or it has ended) is left alone: a replay sends nothing.
    """
    requested: list[dict[str, Any]] = []
    ended: set[str] = set()
    for event in events:
        if event.type is _REQUESTED:
            requested.append(event.payload)
        elif event.type in _CHILD_ENDS:
            ended.add(event.payload["child_id"])
    for payload in requested:
        if payload["child_id"] in ended:
            continue
        record = await _live_run_of_chain(engine.storage, payload["child_run_id"])
        if record is not None and not record.cancel_requested:
            await _request(engine, payload)


async def _request(engine: Engine, payload: dict[str, Any]) -> None:
    """Ask the child (the live run of its continue-as-new chain) to cancel; wake it here."""
    storage = engine.storage
    run_id: str | None = payload["child_run_id"]
    while run_id is not None:
        if await storage.request_cancel(run_id, now=engine.clock.now(), reason=payload["reason"]):
            engine.on_signalled(run_id)
            return
        record = await storage.get_run(run_id)
        if record is None or record.status is not RunStatus.CONTINUED_AS_NEW:
            return  # gone, or ended: nothing to cancel
        run_id = record.continued_to


async def _live_run_of_chain(storage: Storage, run_id: str | None) -> RunRecord | None:
    """The row of the live run of ``run_id``'s chain; None once the chain has ended."""
    while run_id is not None:
        record = await storage.get_run(run_id)
        if record is None:
            return None
        if record.status is not RunStatus.CONTINUED_AS_NEW:
            return None if record.status.is_terminal else record
        run_id = record.continued_to
    return None
