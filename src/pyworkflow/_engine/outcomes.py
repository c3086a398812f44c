"""What each outcome event means to the workflow code waiting on its command.

One function, :func:`settle`, turns an outcome (logged, or just made by the driver) into the
value or exception the command's future gets. Replay and live delivery both go through it, so a
replayed run sees exactly what the first execution saw (DESIGN §2.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyworkflow._engine.failures import rebuild_error
from pyworkflow.events import EventType
from pyworkflow.exceptions import (
    ChildWorkflowCancelledError,
    ChildWorkflowFailedError,
    HookExpiredError,
)

if TYPE_CHECKING:
    from pyworkflow._engine.commands import Command
    from pyworkflow.serialization import Codec
    from pyworkflow.storage.records import EventRecord, NewEvent

__all__ = ["settle"]


def _outcome(event: EventRecord | NewEvent, command: Command, codec: Codec, run_id: str) -> Any:
    """The value the event stands for; raises the exception it stands for."""
    payload = event.payload
    kind = event.type
    if kind is EventType.STEP_COMPLETED:
        return codec.decode(payload["result"])
    if kind is EventType.STEP_FAILED:
        raise rebuild_error(payload["error"], command.command_id)
    if kind is EventType.HOOK_RECEIVED:
        return codec.decode(payload["payload"])
    if kind is EventType.HOOK_EXPIRED:
        raise HookExpiredError(run_id, command.command_id)
    if kind is EventType.CHILD_WORKFLOW_COMPLETED:
        return codec.decode(payload["result"])
    if kind is EventType.CHILD_WORKFLOW_FAILED:
        error = payload.get("error") or {}
        raise ChildWorkflowFailedError(
            payload["child_run_id"], command.name, error.get("type", "?"), error.get("message", "")
        )
    if kind is EventType.CHILD_WORKFLOW_CANCELLED:
        raise ChildWorkflowCancelledError(payload["child_run_id"], command.name, payload["reason"])
    return None  # SLEEP_COMPLETED


def settle(event: EventRecord | NewEvent, command: Command, codec: Codec, run_id: str) -> None:
    """Resolve ``command``'s future with what ``event`` means."""
    future = command.future
    if future.done():
        return
    try:
        value = _outcome(event, command, codec, run_id)
    except Exception as exc:  # the outcome *is* an exception: hand it to the workflow
        future.set_exception(exc)
    else:
        future.set_result(value)
