"""A run's first turn, run before the run is stored: what every executor's start does.

The workflow's code runs up to its first quiet point before the run's row exists, and the
commands it issued go into the transaction that creates the run, so a start costs no commit of
its own (DESIGN §6). The local executor then drives the run with the driver returned here; the
Celery executor only reads what the turn launches (steps to send to workers) and lets it go.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyworkflow._engine.activation import WorkflowActivation
from pyworkflow._engine.driver import FirstTurn, RunDriver
from pyworkflow.events import EventType
from pyworkflow.storage.records import EventRecord, NewEvent, NewRun

if TYPE_CHECKING:
    from pyworkflow._engine.engine import Engine
    from pyworkflow.workflow import Workflow

__all__ = ["first_turn"]


def first_turn(
    engine: Engine, new: NewRun, workflow: Workflow[..., Any]
) -> tuple[RunDriver, tuple[NewEvent, ...]]:
    """The driver of ``new`` after its first turn, and the events its creation must carry.

    No events when the turn cannot go into the creation (it ended the run at once, or created
    hooks or child runs): the run is then created plain and the driver commits the turn.
    ``driver.prepared_launch`` is what the turn launches once the run is stored; a driver that
    will not drive must be let go with ``discard()``.
    """
    run = new.initial_record()
    started = EventRecord(new.run_id, 1, EventType.WORKFLOW_STARTED, new.started_payload, new.now)
    activation = WorkflowActivation.for_run(run, workflow, engine.codec, engine.clock)
    turn = activation.replay([started])
    if turn.finished or activation.divergence is not None or not turn.events:
        activation.close()  # the driver replays the log as for any run
        return RunDriver(engine, run, workflow, history=[started]), ()
    stored = not (turn.hooks or turn.new_runs)
    first = FirstTurn(turn, activation, stored, started.payload.get("deadline"))
    return RunDriver(engine, run, workflow, first=first), tuple(turn.events) if stored else ()
