"""The dashboard's writes on runs and schedules, through the public API.

Runs: cancel, resume, re-run, deliver a hook's payload; schedules: pause, resume, trigger,
backfill, delete. Each goes through the public API the CLI uses (``pyworkflow.client``,
``pyworkflow.hooks``, ``pyworkflow.schedules``), so it is validated and refused exactly as a
script's call is; the dashboard executes no run itself: a worker serving the run's queue does
the work (a schedule's triggered and backfilled runs too). Each returns the JSON the API
answers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pyworkflow.client import cancel_workflow, resume, start
from pyworkflow.events import RunStatus
from pyworkflow.exceptions import InputError
from pyworkflow.hooks import resume_waiting_hook
from pyworkflow.inspect import Undecodable, get_decoded_run, get_run, get_schedule, hook_json
from pyworkflow.runtime import get_runtime
from pyworkflow.schedules import (
    backfill_schedule,
    delete_schedule,
    pause_schedule,
    resume_schedule,
    trigger_schedule,
)
from pyworkflow.serialization import Codec

__all__ = [
    "backfill",
    "cancel_run",
    "change_schedule",
    "delete",
    "deliver_hook",
    "rerun",
    "resume_run",
    "trigger",
]


async def cancel_run(run_id: str, reason: str | None) -> dict[str, Any]:
    """Ask the run to stop; ``cancel_requested`` False when it had already ended.

    Raises:
        RunNotFoundError: no such run.
    """
    requested = await cancel_workflow(run_id, reason=reason or "cancelled from the dashboard")
    status = (await get_run((await get_runtime()).storage, run_id)).status
    return {"run_id": run_id, "cancel_requested": requested, "status": status.value}


async def resume_run(run_id: str) -> dict[str, Any]:
    """Reopen a failed run: its failed steps run again with a fresh retry budget.

    Raises:
        RunNotFoundError: no such run.
        WorkflowNotFoundError: its workflow is not registered here (start with ``--module``).
        InvalidRunStateError: the run completed or was cancelled.
    """
    before = (await get_run((await get_runtime()).storage, run_id)).status
    await resume(run_id)
    resumed = before is RunStatus.FAILED
    return {
        "run_id": run_id,
        "resumed": resumed,
        "status": RunStatus.PENDING.value if resumed else before.value,
    }


async def rerun(run_id: str, codec: Codec) -> dict[str, Any]:
    """Start a new run of the same workflow with the same arguments.

    Raises:
        RunNotFoundError: no such run.
        InputError: its arguments cannot be decoded here (e.g. a pickle without the key).
        WorkflowNotFoundError: its workflow is not registered here (start with ``--module``).
    """
    runtime = await get_runtime()
    decoded = await get_decoded_run(runtime.storage, run_id, codec=codec)
    call = decoded.arguments
    if isinstance(call, Undecodable) or not isinstance(call, dict):
        reason = call.reason if isinstance(call, Undecodable) else "not an argument list"
        raise InputError(f"cannot re-run {run_id!r}: its arguments cannot be decoded ({reason})")
    new_id = await start(decoded.run.workflow, *call.get("args", []), **call.get("kwargs", {}))
    return {"run_id": new_id, "rerun_of": run_id, "workflow": decoded.run.workflow}


async def deliver_hook(run_id: str, hook_id: str, payload: Any) -> dict[str, Any]:
    """Deliver ``payload`` to the run's waiting hook (``resume_waiting_hook``).

    Raises:
        RunNotFoundError, HookNotFoundError, HookAlreadyReceivedError, HookExpiredError,
        InvalidHookPayloadError: as ``resume_waiting_hook``.
    """
    return hook_json(await resume_waiting_hook(run_id, hook_id, payload))


_SCHEDULE_CHANGES = {"pause": pause_schedule, "resume": resume_schedule}


async def change_schedule(schedule_id: str, action: str) -> dict[str, Any]:
    """Pause or resume a schedule (``action``); the schedule as ``GET /api/schedules/{id}``.

    Pausing a paused schedule or resuming an active one changes nothing and is no error.

    Raises:
        ScheduleNotFoundError: no such schedule.
        InputError: ``action`` is neither pause nor resume.
    """
    apply = _SCHEDULE_CHANGES.get(action)
    if apply is None:
        raise InputError(f"schedule action {action!r} is not one of pause, resume")
    await apply(schedule_id)
    view = await get_schedule((await get_runtime()).storage, schedule_id)
    return view.to_json()


async def trigger(schedule_id: str) -> dict[str, Any]:
    """Start a run of the schedule now, outside its slots (``trigger_schedule``).

    Raises:
        ScheduleNotFoundError: no such schedule.
    """
    run_id = await trigger_schedule(schedule_id)
    return {"schedule_id": schedule_id, "run_id": run_id}


async def backfill(schedule_id: str, start: float, end: float) -> dict[str, Any]:
    """Start a run for every slot of the schedule from ``start`` to ``end`` (epoch seconds).

    A slot that has its run already keeps it (``backfill_schedule``): its id is in
    ``run_ids`` all the same, so the answer lists every slot's run, oldest first.

    Raises:
        ScheduleNotFoundError: no such schedule (or it was deleted).
        InputError: the end is before the start, or the range holds more than
            ``MAX_BACKFILL`` slots.
    """
    run_ids = await backfill_schedule(
        schedule_id, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    )
    return {"schedule_id": schedule_id, "run_ids": run_ids}


async def delete(schedule_id: str) -> dict[str, Any]:
    """Delete the schedule: it starts nothing more, its runs go on; the schedule as stored.

    Raises:
        ScheduleNotFoundError: no such schedule, or it was deleted already.
    """
    await delete_schedule(schedule_id)
    view = await get_schedule((await get_runtime()).storage, schedule_id)
    return view.to_json()
