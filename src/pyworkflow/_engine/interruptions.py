"""Making every re-execution visible: a take-over and the attempts it runs again are logged.

A step attempt whose STEP_STARTED is logged but whose outcome is not was cut short: its worker
died (the run is then taken over once the lease lapses), or the worker let the run go while the
step ran (a stop, a lost lease). Executing it again is right (DESIGN §2.1: at-least-once for a
step in flight), but a history that shows one attempt while the step ran twice hides it. So
the driver that takes such a run on logs WORKFLOW_INTERRUPTED (whose lease lapsed, which
attempts were cut short) and runs each cut attempt again as the step's next attempt, with a
STEP_STARTED of its own. Counting the executions of a step is then counting its STEP_STARTED
events. A cut attempt did not fail, so it spends none of the step's retries (``interrupted``
in ``StepProgress`` and ``StepInfo``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pyworkflow._engine import new_events
from pyworkflow._engine.remote import sent_away

if TYPE_CHECKING:
    from pyworkflow._engine.commands import Command, Turn
    from pyworkflow._engine.remote import FinishedAttempt, StepSender
    from pyworkflow.storage.records import RunRecord

__all__ = ["log_reruns"]


def log_reruns(
    turn: Turn,
    run: RunRecord,
    remote: StepSender | None,
    log: logging.LoggerAdapter[logging.Logger] | logging.Logger,
    finished: FinishedAttempt | None = None,
) -> Turn:
    """Log the take-over of ``run`` and re-run its cut attempts as new ones, in ``turn``.

    ``turn`` is the first turn after a replay: its ``launch`` holds the replayed steps still in
    flight. Those that were executed here, or by a worker that is gone, had an attempt cut
    short (steps sent away to another worker are that worker's business: see ``remote``).
    ``finished`` is an attempt a Celery step task has just executed: when earlier deliveries
    of it died mid-execution (``cut_short``), it ran as a later attempt, which is logged here
    with the cut ones. Nothing is logged when nothing was cut and the run was not taken over.
    """
    cut = [
        c
        for c in turn.launch
        if c.kind == "step"
        and c.logged is not None  # replayed, not issued by this turn
        and c.attempt >= 1
        and c.retry_at is None  # waiting out a retry delay is no attempt in flight
        and not sent_away(remote, c)
    ]
    reruns: list[tuple[str, int]] = []
    starts = []
    for command in cut:
        reruns.append((command.command_id, command.attempt))
        command.attempt += 1
        command.interrupted += 1
        starts.append(new_events.step_started(command.command_id, command.name, command.attempt))
    redelivered = _redelivered(turn, finished)
    if redelivered is not None and finished is not None:
        for _ in range(finished.cut_short):
            reruns.append((redelivered.command_id, redelivered.attempt))
            redelivered.attempt += 1
            redelivered.interrupted += 1
            starts.append(
                new_events.step_started(
                    redelivered.command_id, redelivered.name, redelivered.attempt
                )
            )
    if not reruns and run.previous_owner is None:
        return turn
    taken_from = run.previous_owner
    reason = "lease lapsed" if taken_from else "redelivered" if redelivered else "handed back"
    event = new_events.workflow_interrupted(taken_from, run.recovery_count, reruns, reason)
    turn.events[0:0] = [event, *starts]
    what = {
        "lease lapsed": f"taken over from {taken_from}, whose lease lapsed "
        f"(recovery {run.recovery_count})",
        "redelivered": "a step's earlier deliveries died mid-execution",
        "handed back": "taken on after a hand-back mid-step",
    }[reason]
    again = ", ".join(f"{step_id} (attempt {n} was cut short)" for step_id, n in reruns)
    log.warning("%s%s", what, f"; running again: {again}" if again else "")
    return turn


def _redelivered(turn: Turn, finished: FinishedAttempt | None) -> Command | None:
    """The command of ``finished`` if earlier deliveries of its attempt were cut short."""
    if finished is None or not finished.cut_short:
        return None
    for command in turn.launch:
        if command.command_id == finished.step_id and command.attempt == finished.attempt:
            return command
    return None  # the log has moved on: the outcome is stale and will be dropped
