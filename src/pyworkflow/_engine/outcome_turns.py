"""What an arrival from the run's in-flight work means: the turn that logs it.

A step attempt ends (completed, retrying, failed), a sleep or a retry delay comes due: each
becomes events, and for outcomes the workflow code is fed and runs to its next quiet point.
In a cancelled run, the steps that workflow code then issues are refused rather than started.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pyworkflow._engine import hook_tokens, new_events
from pyworkflow._engine.commands import Turn
from pyworkflow._engine.event_kinds import OUTCOME_EVENTS
from pyworkflow._engine.failures import error_record, rebuild_error
from pyworkflow.events import EventType
from pyworkflow.exceptions import CancellationError

if TYPE_CHECKING:
    from pyworkflow._engine.activation import WorkflowActivation
    from pyworkflow._engine.clock import Clock
    from pyworkflow._engine.inflight import Arrival, InFlight

__all__ = ["only_timers", "outcome_turn", "outcomes_only", "refuse_unstarted", "sleep_through"]

# What happened, as opposed to what the workflow code asked for next: the outcomes replay feeds
# back, and a failed attempt's STEP_RETRYING (the failure happened; its retry is a timer).
_HAPPENED = OUTCOME_EVENTS | {EventType.STEP_RETRYING}


def outcome_turn(
    activation: WorkflowActivation,
    arrival: Arrival,
    now: float,
    log: logging.LoggerAdapter[logging.Logger] | logging.Logger,
) -> Turn:
    """The turn a step attempt's end, a sleep's end or a retry delay's end makes."""
    command = arrival.command
    if command is None:  # a "wake": the driver reads the run's row
        return Turn()
    step_id = command.command_id
    if arrival.kind == "timer":
        return activation.deliver(step_id, new_events.sleep_completed(step_id))
    if arrival.kind == "retry_due":
        command.retry_at = None
        command.attempt += 1
        return Turn(
            events=[new_events.step_started(step_id, command.name, command.attempt)],
            launch=[command],
        )
    result = arrival.result
    assert result is not None
    extra = {"step_id": step_id, "attempt": command.attempt}
    if result.ok:
        if log.isEnabledFor(logging.INFO):  # off by default: spare the record's making
            log.info("step %s completed", step_id, extra=extra)
        event = new_events.step_completed(step_id, result.encoded)
        return activation.deliver(step_id, event, value=result.value)
    assert result.record is not None
    if result.retry_in is not None:
        log.warning(
            "step %s attempt %d failed, retrying in %.3gs: %s",
            step_id,
            command.attempt,
            result.retry_in,
            result.error,
            extra=extra,
        )
        command.retry_at = now + result.retry_in
        event = new_events.step_retrying(
            step_id, command.attempt, result.record, command.retry_at, result.retry_in
        )
        return Turn(events=[event], launch=[command])
    log.error("step %s failed: %s", step_id, result.error, extra=extra)
    error = rebuild_error(result.record, step_id)
    return activation.deliver(step_id, new_events.step_failed(step_id, result.record), error=error)


def outcomes_only(turn: Turn) -> Turn:
    """The part of a (not finishing) turn that logs what happened, without what comes next.

    For a driver that stops (``RunDriver.drain``): the outcomes of attempts and timers are
    logged so they never run again, while the commands the code issued after them (steps,
    timers, hooks, children, recorded values) are left out and launch nothing. The log so cut
    is one the code replays to the same point, issuing those commands anew.
    """
    if turn.hooks:
        hook_tokens.pending_rows.difference_update(h.token_hash for h in turn.hooks)
    return Turn(events=[e for e in turn.events if e.type in _HAPPENED])


def refuse_unstarted(
    activation: WorkflowActivation,
    turn: Turn,
    is_started: Callable[[str], bool],
    reason: str | None,
) -> Turn:
    """In a cancelled run, fail the steps about to start instead of starting them.

    Each gets a logged STEP_FAILED carrying CancellationError, so the workflow sees the error
    where it awaits the step, and a replay sees the same. Steps issued inside ``shield()`` are
    cleanup the workflow asked for: they start.
    """
    while activation.cancelled and not turn.finished:
        unstarted = [
            c
            for c in turn.launch
            if c.kind == "step"
            and not c.shielded
            and c.retry_at is None
            and not is_started(c.command_id)
        ]
        if not unstarted:
            return turn
        turn.launch = [c for c in turn.launch if c not in unstarted]
        for command in unstarted:
            error = CancellationError(reason)
            event = new_events.step_failed(command.command_id, error_record(error))
            turn = turn.merge(activation.deliver(command.command_id, event, error=error))
    return turn


async def sleep_through(
    activation: WorkflowActivation, inflight: InFlight, clock: Clock, turn: Turn
) -> Turn:
    """Fire the turn's new timers in the turn itself when the clock can skip to them.

    Under the test environment's virtual clock, a run that only sets a timer while nothing
    else happens would see the clock jump to it at once; firing it here logs the same events
    (SLEEP_STARTED, SLEEP_COMPLETED, then what the code does next) in one append instead of
    two, and nothing runs between them. The system clock never skips: this returns ``turn``.
    """
    while only_timers(turn, inflight):
        first = min(c.wake_at for c in turn.launch if c.wake_at is not None)
        earlier = inflight.earliest_timer()
        if (earlier is not None and earlier <= first) or not await clock.skip_to(first):
            return turn
        due, turn.launch = turn.launch, []
        for command in due:
            event = new_events.sleep_completed(command.command_id)
            turn = turn.merge(activation.deliver(command.command_id, event))
    return turn


def only_timers(turn: Turn, inflight: InFlight) -> bool:
    """True when the turn only sets timers while nothing runs: what ``sleep_through`` fires."""
    return (
        not turn.finished
        and bool(turn.launch)
        and inflight.running_steps == 0
        and all(c.kind == "sleep" and c.wake_at is not None for c in turn.launch)
    )
