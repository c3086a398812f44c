"""Making every re-execution visible: a take-over and the attempts it runs again are logged.

A step attempt whose STEP_STARTED is logged but whose outcome is not was cut short: its worker
died (the run is then taken over once the lease lapses), or the worker let the run go while the
step ran (a stop, a lost lease). Executing it again is right (DESIGN §2.1: at-least-once for a
step in flight), but a history that shows one attempt while the step ran twice hides it. So
the driver that takes such a run on logs WORKFLOW_INTERRUPTED (whose lease lapsed, which
attempts were cut short) and runs each cut attempt again as the step's next attempt, with a
STEP_STARTED of its own. Counting the executions of a step is then counting its STEP_STARTED
events. A cut attempt did not fail, so it spends none of the step's retries (``interrupted``
in ``StepProgress`` and ``StepContext``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pyworkflow._engine import entries
from pyworkflow._engine.remote import sent_away

if TYPE_CHECKING:
    from pyworkflow._engine.commands import Turn
    from pyworkflow._engine.remote import StepSender
    from pyworkflow.storage.protocol import RunRecord

__all__ = ["log_reruns"]


def log_reruns(
    turn: Turn,
    run: RunRecord,
    remote: StepSender | None,
    log: logging.LoggerAdapter[logging.Logger] | logging.Logger,
) -> Turn:
    """Log the take-over of ``run`` and re-run its cut attempts as new ones, in ``turn``.

    ``turn`` is the first turn after a replay: its ``launch`` holds the replayed steps still in
    flight. Those that were executed here, or by a worker that is gone, had an attempt cut
    short (steps sent away to another worker are that worker's business: see ``remote``).
    Nothing is logged when the run was neither taken over nor cut mid-step.
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
    if not cut and run.previous_owner is None:
        return turn
    reruns = []
    for command in cut:
        reruns.append((command.command_id, command.attempt))
        command.attempt += 1
        command.interrupted += 1
    taken_from = run.previous_owner
    event = entries.workflow_interrupted(taken_from, run.recovery_count, reruns)
    starts = [entries.step_started(c.command_id, c.name, c.attempt) for c in cut]
    turn.events[0:0] = [event, *starts]
    what = (
        f"taken over from {taken_from}, whose lease lapsed (recovery {run.recovery_count})"
        if taken_from
        else "taken on after a hand-back mid-step"
    )
    again = ", ".join(f"{step_id} (attempt {n} was cut short)" for step_id, n in reruns)
    log.warning("%s; running again: %s", what, again or "nothing")
    return turn
