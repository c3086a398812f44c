"""Steps executed away from their run's driver (Celery workers, local workers of a queue).

With a ``StepSender`` in the engine, a driver does not execute a step that the sender calls
remote for its run (``StepSender.for_run``). Once the append logging its STEP_STARTED has
committed, the driver hands the step to the sender (the Celery executor sends a broker message
naming the run, the step and the attempt, nothing else; the local executor offers it in
storage to the workers of its queue) and lets the run go: no coroutine or worker waits on a
step running elsewhere (DESIGN §2.6). The task that executes the attempt then takes the run's
lease and drives it with the attempt's outcome already known (``FinishedAttempt``): the turn
that logs the outcome is that task's, so a step costs one broker hop and one append.

Storage stays the truth (DESIGN §2.5): a run whose steps are away is released with a
*watchdog* wake-up time. When it comes due, a driver replays the run and sends again each
remote step in flight whose message seems lost, that is, nobody holds the attempt's step lease
and it was sent longer than ``dispatch_grace`` ago (``plan_redispatch``). A duplicate message
costs nothing: the step lease lets one delivery execute an attempt at a time, and an attempt
whose outcome is logged is never executed again (DESIGN §2.1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pyworkflow.events import EventType

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pyworkflow._engine.attempts import AttemptResult
    from pyworkflow._engine.commands import Command, Turn
    from pyworkflow._engine.engine import Engine
    from pyworkflow._engine.inflight import InFlight
    from pyworkflow.step import StepDefinition
    from pyworkflow.storage.records import StepLease

__all__ = [
    "FinishedAttempt",
    "RemoteStep",
    "StepRouter",
    "StepSender",
    "only_away",
    "plan_redispatch",
    "send_launched",
    "sent_away",
    "settle_replayed",
]


@dataclass(frozen=True, slots=True)
class RemoteStep:
    """One attempt of a step to send away: what a broker message names."""

    step_id: str
    name: str
    attempt: int


@dataclass(frozen=True, slots=True)
class FinishedAttempt:
    """An attempt executed away from the driver; the driver logs it instead of running it.

    ``attempt`` is the attempt the broker message named. ``cut_short``: how many earlier
    deliveries of it died mid-execution; the execution that finished then ran as attempt
    ``attempt + cut_short`` (the driver logs the cut ones, ``interruptions``).
    """

    step_id: str
    attempt: int
    result: AttemptResult
    cut_short: int = 0


class StepSender(Protocol):
    """Where remote steps go (the Celery executor; the local executor for steps of a queue)."""

    @property
    def dispatch_grace(self) -> float:
        """Seconds a sent step may wait for a worker before it is sent again."""

    def is_remote(self, definition: StepDefinition) -> bool:
        """True if attempts of this step are executed elsewhere (not ``force_local``)."""

    async def send(self, run_id: str, steps: Sequence[RemoteStep]) -> None:
        """Send the attempts away; called only after their STEP_STARTED committed."""


class StepRouter(Protocol):
    """Which ``StepSender`` the steps of a run go to: the engine's ``remote``."""

    def for_run(self, queue: str) -> StepSender | None:
        """The sender for a run of ``queue``; None when every step of it is executed here.

        A driver asks once, for its run. The Celery executor is its own sender for every
        run; the local executor's depends on the run's queue and the steps' queues.
        """


def plan_redispatch(
    commands: Sequence[Command],
    leases: Mapping[str, StepLease],
    *,
    now: float,
    grace: float,
) -> tuple[list[Command], dict[str, float]]:
    """Which replayed remote steps to send again, and when to look at each one next.

    A step whose attempt somebody is executing (a live step lease) is left alone until that
    lease would lapse; one sent less than ``grace`` ago may still sit in the broker's queue;
    the others were lost (their message vanished, or the worker executing them died) and go
    out again.

    Returns:
        The commands to send again, and each remote command's watchdog time.
    """
    resend: list[Command] = []
    watch: dict[str, float] = {}
    for command in commands:
        lease = leases.get(command.command_id)
        if lease is not None and lease.attempt == command.attempt and lease.owner is not None:
            expires = lease.lease_expires_at or 0.0
            if expires > now:
                watch[command.command_id] = expires
                continue
            # A lapsed lease: the worker executing the attempt died. Send it again now.
        elif command.started_at is not None and command.started_at + grace > now:
            watch[command.command_id] = command.started_at + grace
            continue
        resend.append(command)
        watch[command.command_id] = now + grace
    return resend, watch


def sent_away(remote: StepSender | None, command: Command) -> bool:
    """True for a step attempt to execute elsewhere (not a retry delay, not ``force_local``)."""
    return (
        remote is not None
        and command.kind == "step"
        and command.retry_at is None
        and command.definition is not None
        and remote.is_remote(command.definition)
    )


def only_away(remote: StepSender | None, turn: Turn) -> bool:
    """True if the turn goes on elsewhere: it launches no step this process executes.

    Then nothing executes here, so the driver may launch before the commit, and the commit
    that logs the turn may let the run go as well. Always False without a ``StepSender``.
    """
    return (
        remote is not None
        and not turn.finished
        and not any(
            c.kind == "step" and c.retry_at is None and not sent_away(remote, c)
            for c in turn.launch
        )
    )


async def settle_replayed(
    engine: Engine,
    remote: StepSender | None,
    inflight: InFlight,
    turn: Turn,
    run_id: str,
    finished_step: str | None,
    log: logging.LoggerAdapter[logging.Logger] | logging.Logger,
) -> bool:
    """Hold a replayed turn's remote steps that live elsewhere; True if it needs no commit.

    Without a ``StepSender`` (``remote``, the run's) nothing changes (False). Otherwise, of
    the remote steps the log
    has in flight, only the lost stay in ``turn.launch``; the others are running on a worker
    or waiting in the broker's queue, and ``inflight`` only keeps a watchdog time for each
    (see ``plan_redispatch``). The step whose outcome the driver is about to log
    (``finished_step``) stays. A turn with nothing to record needs no commit: the claim took
    the lease, and the turn that follows (the step's outcome, or letting the run go) writes
    the run's row.
    """
    if remote is None:
        return False
    fresh = {e.payload["step_id"] for e in turn.events if e.type is EventType.STEP_STARTED}
    away = [
        c
        for c in turn.launch
        if sent_away(remote, c) and c.command_id not in fresh and c.command_id != finished_step
    ]
    if away and not turn.finished:
        leases = {lease.step_id: lease for lease in await engine.storage.list_step_leases(run_id)}
        now = engine.clock.now()
        resend, watch = plan_redispatch(away, leases, now=now, grace=remote.dispatch_grace)
        held = [c for c in away if c not in resend]
        turn.launch = [c for c in turn.launch if c not in held]
        inflight.hold_remote(held, watch)
        if resend:
            log.warning("sending again %d steps whose workers seem lost", len(resend))
    return not (turn.events or turn.hooks or turn.new_runs or turn.finished)


async def send_launched(remote: StepSender | None, inflight: InFlight, run_id: str) -> None:
    """Hand the remote steps ``inflight`` launched (their STEP_STARTED committed) to ``remote``."""
    unsent = inflight.take_unsent()
    if unsent and remote is not None:
        await remote.send(run_id, unsent)
