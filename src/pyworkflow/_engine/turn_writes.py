"""What a committed turn writes: the append of a run's turn, and the row of a run that ended.

Pure functions of the run as the driver holds it and of the turn: the driver decides when to
commit and what follows; what the commit says (the run's new status, its wake-up time and
lease, its end and a continue-as-new successor) is written here, once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyworkflow._engine import new_events
from pyworkflow._engine.new_runs import new_run
from pyworkflow.events import EventType, RunStatus
from pyworkflow.storage.records import AppendWrite, EventRecord, RunRecord

if TYPE_CHECKING:
    from pyworkflow._engine.commands import Turn
    from pyworkflow.workflow import Workflow

__all__ = ["TurnWrite", "deadline_of", "ended_record", "turn_write"]


@dataclass(frozen=True, slots=True)
class TurnWrite:
    """A turn's append, and what it makes of the run."""

    write: AppendWrite
    status: RunStatus
    continued_to: str | None
    """The run a ``continue_as_new`` of this turn starts, created by the same append."""


def turn_write(
    run: RunRecord,
    workflow: Workflow[..., Any],
    turn: Turn,
    *,
    owner: str,
    expected_seq: int,
    now: float,
    lease_until: float,
    busy: bool,
    release: bool,
    released_wake_at: float | None,
    progressed: bool,
    signals_seen: int,
) -> TurnWrite:
    """The append that commits ``turn`` of ``run``.

    Args:
        run: the run as its driver holds it.
        workflow: its workflow (a continue-as-new starts another run of it).
        turn: what the code issued and what arrived since the last commit.
        owner: the lease owner writing.
        expected_seq: the run's last seq as the driver knows it.
        now: the engine's clock.
        lease_until: the renewed lease's expiry, unless the turn lets the run go.
        busy: a step is running or about to (the run is ``running``, else ``suspended``).
        release: the driver lets the run go with this commit (it waits on timers past the
            horizon, hooks or children).
        released_wake_at: when a released run wants its next turn (its first timer), or None.
        progressed: an outcome is recorded, so the run's recovery count starts again.
        signals_seen: the outside signals the driver has acted on.
    """
    events, new_runs, continued_to = turn.events, turn.new_runs, None
    if turn.finished:
        if turn.continued is not None:
            successor = new_run(
                workflow,
                turn.continued,
                now=now,
                parent_run_id=run.parent_run_id,
                parent_close_policy=run.parent_close_policy,
                continued_from=run.run_id,
            )
            new_runs, continued_to = (*new_runs, successor), successor.run_id
        status, ended = new_events.workflow_ended(
            cancelled=turn.cancelled,
            error=turn.error,
            result=turn.result,
            reason=run.cancel_reason,
            continued_to=continued_to,
        )
        events = [*events, ended]
    else:
        status = RunStatus.RUNNING if busy else RunStatus.SUSPENDED
    # Invariant (DESIGN §2.5): a leased run keeps a wake-up time no later than its lease's
    # expiry, so that it is recovered if we die. The one it has already does; leaving it
    # unchanged lets PostgreSQL update the row in place (HOT) instead of rewriting every index
    # entry of the run at each step. A released run wants its first timer, or nothing: only an
    # outside writer (a hook's payload, a child's end) wakes it then.
    kept = now if run.wake_at is None else run.wake_at
    wake_at = released_wake_at if release else kept
    write = AppendWrite(
        run_id=run.run_id,
        owner=owner,
        expected_seq=expected_seq,
        events=events,
        now=now,
        status=status,
        wake_at=None if turn.finished else wake_at,
        lease_expires_at=None if (release or turn.finished) else lease_until,
        result=turn.result if status is RunStatus.COMPLETED else None,
        error=turn.error if status is RunStatus.FAILED else None,
        progressed=progressed,
        signals_seen=signals_seen,
        hooks=turn.hooks,
        new_runs=new_runs,
    )
    return TurnWrite(write, status, continued_to)


def ended_record(run: RunRecord, written: TurnWrite, last_seq: int) -> RunRecord:
    """The row of ``run`` as the append ``written``, which ended it, left it."""
    write, status = written.write, written.status
    return dataclasses.replace(
        run,
        status=status,
        result=write.result,
        error=write.error,
        updated_at=write.now,
        completed_at=write.now,
        wake_at=None,
        lease_owner=None,
        lease_expires_at=None,
        last_seq=last_seq,
        continued_to=written.continued_to,
    )


def deadline_of(events: list[EventRecord]) -> float | None:
    """The run's ``max_duration`` deadline: the last resume's, else the start's, else None."""
    for event in reversed(events):
        resumed_anew = event.type is EventType.WORKFLOW_RESUMED and "deadline" in event.payload
        if resumed_anew or event.type is EventType.WORKFLOW_STARTED:
            deadline: float | None = event.payload.get("deadline")
            return deadline
    return None
