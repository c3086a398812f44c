"""Commands that wait on the outside world: hooks and child runs.

Both are recorded like any command (numbered, matched against the log by kind and name), and
both create rows in the append that logs them: a hook's row (only its token's hash), a child's
run. Their outcomes arrive from outside writers (``outside_writes.py``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pyworkflow._engine import hook_tokens, new_events
from pyworkflow._engine.new_runs import new_run
from pyworkflow.exceptions import MaxNestingDepthError
from pyworkflow.storage.records import NewHook

if TYPE_CHECKING:
    from pyworkflow._engine.activation import WorkflowActivation
    from pyworkflow._engine.commands import Command
    from pyworkflow.workflow import Workflow

__all__ = ["start_child", "wait_hook"]


def _token(activation: WorkflowActivation, hook_id: str, nonce: str) -> str:
    key = activation.codec.signing_key
    return hook_tokens.derive_token(key, activation.run_id, hook_id, nonce)


async def wait_hook(
    activation: WorkflowActivation,
    name: str,
    *,
    expires_at: float | None,
    payload_type: str | None,
    on_created: Callable[[str], Awaitable[None] | None] | None,
) -> Any:
    """Issue a hook, hand its token to ``on_created``, wait for its payload or timeout.

    ``on_created`` runs as workflow code, on every replay too, with the same token (derived
    from the logged nonce): it may call steps, whose results replay from the log.
    """
    command = activation.issue("hook", f"hook:{name}", name, wake_at=expires_at)
    if command.logged is None:
        nonce = hook_tokens.new_nonce()
        token = _token(activation, command.command_id, nonce)
        row = NewHook(
            hook_tokens.hash_token(token), command.command_id, name, payload_type, expires_at
        )
        hook_tokens.pending_rows.add(row.token_hash)
        event = new_events.hook_created(command.command_id, name, nonce, expires_at, payload_type)
        activation.record(event, launch=command, hook=row)
    else:
        command.wake_at = command.logged.payload["expires_at"]
        token = _token(activation, command.command_id, command.logged.payload["nonce"])
    if on_created is not None:
        created = on_created(token)
        if inspect.isawaitable(created):
            await created
    return await command.future


def start_child(
    activation: WorkflowActivation,
    workflow: Workflow[..., Any],
    encoded_call: Any,
    *,
    wait: bool,
    policy: str,
) -> Command:
    """Issue a child run; returns its command (``target``: its run id; ``future``: its outcome).

    The child is created by the append that logs CHILD_WORKFLOW_STARTED, so no replay or
    crash starts it twice (once logged, its id comes from the log).
    """
    if activation.nesting_depth >= MaxNestingDepthError.MAX_DEPTH:
        raise MaxNestingDepthError(activation.run_id, activation.nesting_depth)
    command = activation.issue("child", f"child:{workflow.name}", workflow.name)
    # Not awaited when the caller did not wait: its failure must not be reported as lost.
    command.future.add_done_callback(lambda f: f.cancelled() or f.exception())
    if command.logged is None:
        child = new_run(
            workflow,
            encoded_call,
            now=activation.now(),
            parent_run_id=activation.run_id,
            parent_close_policy=policy,
            nesting_depth=activation.nesting_depth + 1,
        )
        command.target = child.run_id
        event = new_events.child_started(
            command.command_id, workflow.name, child.run_id, wait=wait, policy=policy
        )
        activation.record(event, new_run=child)
    else:
        command.target = command.logged.payload["child_run_id"]
    assert command.target is not None
    return command
