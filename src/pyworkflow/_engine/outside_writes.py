"""Turning what outside writers left in storage into the run's own events (DESIGN §7).

``resume_hook`` stores a payload in the hook's row and a child's end its own run row; each
then makes the run due. Only the run's lease holder logs them, here: HOOK_RECEIVED for each
waiting hook whose row has a payload, CHILD_WORKFLOW_* for each waited-on child whose
continue-as-new chain has ended, in the order they happened. A hook whose timeout fires is
expired in storage first, so a delivery racing the timeout either wins (its payload is
logged) or is refused with HookExpiredError, never both.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pyworkflow._engine import new_events
from pyworkflow._engine.commands import Turn
from pyworkflow._engine.failures import error_record, unreadable_outcome
from pyworkflow.events import TERMINAL_STATUSES, HookStatus, RunStatus
from pyworkflow.storage.records import NewEvent, RunCursor, RunRecord

if TYPE_CHECKING:
    from pyworkflow._engine.activation import WorkflowActivation
    from pyworkflow._engine.commands import Command
    from pyworkflow.storage.protocol import Storage

__all__ = ["collect", "expire_hook", "take_signals"]

_PAGE = 1000


async def take_signals(
    storage: Storage,
    activation: WorkflowActivation,
    run: RunRecord,
    log: logging.LoggerAdapter[logging.Logger],
    turn: Turn,
) -> Turn:
    """``turn`` followed by what the run's row says outside writers left.

    A cancel request first (so the next primitive the code awaits raises CancellationError),
    then the hook payloads and children's ends (:func:`collect`), unless the run ended.
    """
    if run.cancel_requested and not activation.cancelled and not turn.finished:
        log.info("cancellation requested: %s", run.cancel_reason)
        turn = turn.merge(activation.request_cancel(run.cancel_reason))
    if not turn.finished:
        turn = turn.merge(await collect(storage, activation))
    return turn


async def collect(storage: Storage, activation: WorkflowActivation) -> Turn:
    """The turn that logs every delivered hook and ended child the run waits on."""
    waits = activation.outside_waits()
    turn = Turn()
    if not waits:
        return turn
    run_id = activation.run_id
    arrivals: list[tuple[float, Command, NewEvent]] = []
    hooks = {c.command_id: c for c in waits if c.kind == "hook"}
    if hooks:
        received = await storage.list_hooks(
            run_id=run_id,
            status=HookStatus.RECEIVED,
            limit=len(hooks) + 10_000,
            hook_ids=list(hooks),
        )
        for hook in received:
            command = hooks.get(hook.hook_id)
            if command is not None:
                event = new_events.hook_received(hook.hook_id, hook.payload)
                arrivals.append((hook.received_at or 0.0, command, event))
    children = [c for c in waits if c.kind == "child"]
    if children:
        ended = await _ended_children(storage, run_id)
        for command in children:
            last = _chain_end(ended, command.target)
            if last is not None:
                # A child whose outcome cannot be read failed, for its parent: never a None.
                damage = unreadable_outcome(last)
                event = new_events.child_ended(
                    command.command_id,
                    last.run_id,
                    last.status if damage is None else RunStatus.FAILED,
                    result=last.result,
                    error=last.error if damage is None else error_record(damage),
                    reason=last.cancel_reason,
                )
                arrivals.append((last.completed_at or 0.0, command, event))
    arrivals.sort(key=lambda a: a[0])
    for _, _command, event in arrivals:
        turn.merge(activation.deliver_outcome(event))
        if turn.finished:
            break
    return turn


async def expire_hook(storage: Storage, activation: WorkflowActivation, command: Command) -> Turn:
    """The hook's timeout passed: log its expiry, or the payload that arrived just before."""
    hook = await storage.expire_hook(activation.run_id, command.command_id, now=activation.now())
    if hook.status is HookStatus.RECEIVED:
        return activation.deliver_outcome(new_events.hook_received(hook.hook_id, hook.payload))
    return activation.deliver_outcome(new_events.hook_expired(command.command_id))


async def _ended_children(storage: Storage, run_id: str) -> dict[str, RunRecord]:
    """The run's ended children (with their continuations), by run id."""
    ended: dict[str, RunRecord] = {}
    cursor = None
    while True:
        page = await storage.list_runs(
            statuses=TERMINAL_STATUSES, parent_run_id=run_id, limit=_PAGE, before=cursor
        )
        ended.update((r.run_id, r) for r in page)
        if len(page) < _PAGE:
            return ended
        cursor = RunCursor(page[-1].created_at, page[-1].run_id)


def _chain_end(ended: dict[str, RunRecord], run_id: str | None) -> RunRecord | None:
    """The child's last run if its chain has ended (not continued), else None."""
    record = ended.get(run_id) if run_id else None
    while record is not None and record.status is RunStatus.CONTINUED_AS_NEW:
        record = ended.get(record.continued_to) if record.continued_to else None
    return record if record is not None and record.status in TERMINAL_STATUSES else None
