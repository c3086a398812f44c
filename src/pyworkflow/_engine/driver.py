"""Driving one leased run: replay, commit, execute local steps, wait, suspend.

A driver owns a run while its process holds the run's lease. It replays the log into a
``WorkflowActivation``, commits what the code issued (one append per quiet point: a step's
completion goes out together with the commands the code issues next, DESIGN §6), runs the
steps, and waits. It lets the run go when the run ends, when it only waits on timers further
away than the horizon (DESIGN §2.6), when it loses its lease, or when its process stops.

Invariant (DESIGN §2.1): a step executes only after its STEP_STARTED is committed, and its
result is handed to the workflow only together with the append that logs it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pyworkflow._engine import entries, tracing
from pyworkflow._engine.activation import Turn, WorkflowActivation
from pyworkflow._engine.events import RunStatus
from pyworkflow._engine.failures import error_record, rebuild_error
from pyworkflow._engine.inflight import Arrival, InFlight
from pyworkflow.exceptions import CancellationError, ConcurrencyConflictError, PyWorkflowError
from pyworkflow.logging import run_logger
from pyworkflow.storage.protocol import AppendWrite, EventRecord, NewEvent, RunRecord

if TYPE_CHECKING:
    from pyworkflow._engine.clock import Clock
    from pyworkflow.serialization import Codec
    from pyworkflow.step import StepDefinition
    from pyworkflow.storage.protocol import Storage
    from pyworkflow.workflow import Workflow

__all__ = ["Engine", "EngineSettings", "RunDriver"]


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Knobs of the turn loop.

    Attributes:
        lease_seconds: how long a lease lasts without renewal; a dead worker's runs are taken
            over this long after its last heartbeat.
        horizon_seconds: a run waiting longer than this lets go of its coroutine and lease.
        max_recoveries: take-overs of a run without progress before it is failed.
    """

    lease_seconds: float = 15.0
    horizon_seconds: float = 5.0
    max_recoveries: int = 5


@dataclass(slots=True)
class Engine:
    """What every driver of a process shares."""

    storage: Storage
    codec: Codec
    clock: Clock
    owner: str
    settings: EngineSettings = field(default_factory=EngineSettings)
    on_finished: Callable[[RunRecord], None] = lambda record: None
    """Called with the run's row as just committed, once it has ended."""
    resolve_step: Callable[[StepDefinition], StepDefinition] | None = None
    """The definition whose function an attempt runs; the test toolkit swaps in fakes here."""

    def lease_until(self) -> float:
        """The expiry of a lease taken or renewed now."""
        return self.clock.now() + self.settings.lease_seconds


class RunDriver:
    """Executes the turns of one leased run until it lets the run go."""

    def __init__(
        self,
        engine: Engine,
        run: RunRecord,
        workflow: Workflow[..., Any],
    ) -> None:
        self._engine = engine
        self._run = run
        self._workflow = workflow
        self._seq = run.last_seq
        self._signals_seen = run.signal_seq
        self._status = run.status
        self._inflight = InFlight(
            run_id=run.run_id,
            workflow_name=run.workflow_name,
            clock=engine.clock,
            codec=engine.codec,
            resolve_step=engine.resolve_step,
        )
        self._log = run_logger(run.run_id, run.workflow_name)
        self._trace = tracing.NO_TRACE
        self._activation: WorkflowActivation | None = None
        self._check_pending = False
        self._history: list[EventRecord] | None = None  # the log, when already known
        self._holds_lease = True
        self._prepared: Turn | None = None

    @property
    def holds_lease(self) -> bool:
        """False once the driver's last commit released the run (it ended or suspended)."""
        return self._holds_lease

    @property
    def run_id(self) -> str:
        """The run this driver owns."""
        return self._run.run_id

    @property
    def workflow_name(self) -> str:
        """The workflow of the run this driver owns."""
        return self._run.workflow_name

    async def drive(self) -> None:
        """Run turns until the run ends, suspends past the horizon, or the lease is lost."""
        with tracing.turn(self._run.run_id, self._run.workflow_name) as self._trace:
            try:
                await self._drive()
            except ConcurrencyConflictError as exc:
                self._log.warning("lost the run to another worker: %s", exc)
            except asyncio.CancelledError:
                await self._hand_back()
                raise
            finally:
                self._inflight.stop()
                if self._activation is not None:
                    self._activation.close()

    # --- the turn loop ---------------------------------------------------------------------

    def begin_new(self, started: EventRecord) -> tuple[NewEvent, ...]:
        """For a run about to be stored: run its first turn now, before the run exists.

        Returns the commands that turn issued, to be stored in the transaction that creates
        the run (so a start costs no commit of its own); ``drive`` then launches them without
        reading or replaying anything. Returns nothing when the first turn would end the run
        at once: the run is then created plain and driven as usual.
        """
        self._seq = started.seq
        activation = self._make_activation()
        turn = activation.replay([started])
        if turn.finished or activation.divergence is not None or not turn.events:
            activation.close()
            self._activation = None
            self._history = [started]
            return ()
        self._prepared = turn
        self._seq += len(turn.events)
        busy = any(c.kind == "step" for c in turn.launch)
        self._status = RunStatus.RUNNING if busy else RunStatus.SUSPENDED
        return tuple(turn.events)

    def discard(self) -> None:
        """Let go of a driver that will not drive (its run was not created)."""
        if self._activation is not None:
            self._activation.close()
            self._activation = None
        self._prepared = None

    @property
    def status(self) -> RunStatus:
        """The run's status as this driver last wrote it (or will, for a run being created)."""
        return self._status

    def _make_activation(self) -> WorkflowActivation:
        engine, run = self._engine, self._run
        call = engine.codec.decode(run.args)
        self._activation = WorkflowActivation(
            run_id=run.run_id,
            workflow=self._workflow,
            args=tuple(call["args"]),
            kwargs=dict(call["kwargs"]),
            codec=engine.codec,
            clock=engine.clock,
        )
        return self._activation

    async def _drive(self) -> None:
        turn = self._prepared or await self._begin()
        self._prepared = None
        if turn is None:
            return
        await self._loop(turn)

    async def _begin(self) -> Turn | None:
        """Replay the log and commit the first turn; the turn to launch, or None if it ended."""
        engine, run = self._engine, self._run
        events = self._history or await engine.storage.load_events(run.run_id)
        self._history = None
        self._seq = events[-1].seq if events else run.last_seq
        self._log.debug("replaying %d events (recovery %d)", len(events), run.recovery_count)
        activation = self._make_activation()
        if run.recovery_count > engine.settings.max_recoveries:
            reason = (
                f"run {run.run_id!r} was taken over {run.recovery_count} times without "
                "progress: its worker keeps dying while running it"
            )
            self._log.error(reason)
            await self._finish_failed(
                {"type": "RecoveryLimitExceeded", "message": reason, "traceback": ""}
            )
            return None
        turn = activation.replay(events)
        if activation.divergence is not None:
            self._log.error("%s", activation.divergence)
            await self._finish_failed(error_record(activation.divergence))
            return None
        if run.cancel_requested and not activation.cancelled and not turn.finished:
            self._log.info("cancellation requested: %s", run.cancel_reason)
            turn = _merge(turn, activation.request_cancel(run.cancel_reason))
        for command in turn.launch:
            if command.kind == "step" and command.attempt == 0:
                # Re-opened by resume(): its fresh budget starts with a logged attempt 1.
                command.attempt += 1
                turn.events.append(entries.step_started(command.command_id, command.name, 1))
        turn = self._refuse_unstarted(turn)
        # Always commit after a replay: it renews the lease, records any new commands and
        # shows the run as running (or suspended) again after a take-over.
        await self._commit(turn, progressed=False)
        return None if turn.finished else turn

    async def _loop(self, turn: Turn) -> None:
        """Launch what the code issued, then turn outcomes into commits until the run lets go."""
        inflight = self._inflight
        inflight.launch(turn.launch)
        while True:
            if inflight.running_steps == 0 and self._suspend_due():
                await self._commit(Turn(), progressed=False, release=True)
                if self._log.isEnabledFor(logging.INFO):
                    wake = datetime.fromtimestamp(inflight.earliest_timer() or 0.0, UTC)
                    self._log.info("suspended until %s", wake.isoformat(timespec="seconds"))
                return
            arrival = await inflight.next()
            turn = Turn()
            if self._check_pending:
                # Before the outcomes: a cancel seen now is logged ahead of what the code
                # does next, so the next primitive raises CancellationError.
                self._check_pending = False
                turn = await self._check_signals()
            turn = _merge(turn, self._apply(arrival))
            while not turn.finished and (ready := inflight.ready()) is not None:
                turn = _merge(turn, self._apply(ready))
            turn = self._refuse_unstarted(turn)
            if not turn.events and not turn.finished:
                continue
            await self._commit(turn, progressed=True)
            if turn.finished:
                return
            inflight.launch(turn.launch)

    def poke(self) -> None:
        """An outside writer touched the run (e.g. a cancel request): look at its row."""
        self._check_pending = True
        self._inflight.wake()

    async def _check_signals(self) -> Turn:
        run = await self._engine.storage.get_run(self._run.run_id)
        activation = self._activation
        assert activation is not None
        if run is None or run.signal_seq <= self._signals_seen:
            return Turn()
        self._signals_seen = run.signal_seq
        if run.cancel_requested and not activation.cancelled:
            self._run = run
            self._log.info("cancellation requested: %s", run.cancel_reason)
            return activation.request_cancel(run.cancel_reason)
        return Turn()

    def _suspend_due(self) -> bool:
        """Let the run go if it only waits on timers beyond the horizon."""
        first = self._inflight.earliest_timer()
        if first is None:
            return False
        return first - self._engine.clock.now() > self._engine.settings.horizon_seconds

    def _apply(self, arrival: Arrival) -> Turn:
        """The turn one outcome makes: logged, and fed to the workflow if it is one."""
        activation = self._activation
        assert activation is not None
        command = arrival.command
        if command is None:  # a "wake": _check_signals reads the row
            return Turn()
        step_id = command.command_id
        if arrival.kind == "timer":
            return activation.deliver(step_id, entries.sleep_completed(step_id))
        if arrival.kind == "retry_due":
            command.retry_at = None
            command.attempt += 1
            return Turn(
                events=[entries.step_started(step_id, command.name, command.attempt)],
                launch=[command],
            )
        result = arrival.result
        assert result is not None
        extra = {"step_id": step_id, "attempt": command.attempt}
        if result.ok:
            self._log.info("step %s completed", step_id, extra=extra)
            event = entries.step_completed(step_id, result.encoded)
            return activation.deliver(step_id, event, value=result.value)
        assert result.record is not None
        if result.retry_in is not None:
            self._log.warning(
                "step %s attempt %d failed, retrying in %.3gs: %s",
                step_id,
                command.attempt,
                result.retry_in,
                result.error,
                extra=extra,
            )
            command.retry_at = self._engine.clock.now() + result.retry_in
            event = entries.step_retrying(step_id, command.attempt, result.record, command.retry_at)
            return Turn(events=[event], launch=[command])
        self._log.error("step %s failed: %s", step_id, result.error, extra=extra)
        error = rebuild_error(result.record, step_id)
        return activation.deliver(step_id, entries.step_failed(step_id, result.record), error=error)

    def _refuse_unstarted(self, turn: Turn) -> Turn:
        """In a cancelled run, fail the steps about to start instead of starting them.

        Each gets a logged STEP_FAILED carrying CancellationError, so the workflow sees the
        error where it awaits the step, and a replay sees the same.
        """
        activation = self._activation
        assert activation is not None
        while activation.cancelled and not turn.finished:
            unstarted = [
                c
                for c in turn.launch
                if c.kind == "step"
                and c.retry_at is None
                and not self._inflight.is_started(c.command_id)
            ]
            if not unstarted:
                return turn
            turn.launch = [c for c in turn.launch if c not in unstarted]
            for command in unstarted:
                error = CancellationError(self._run.cancel_reason)
                event = entries.step_failed(command.command_id, error_record(error))
                turn = _merge(turn, activation.deliver(command.command_id, event, error=error))
        return turn

    # --- storage ---------------------------------------------------------------------------------

    async def _commit(self, turn: Turn, *, progressed: bool, release: bool = False) -> None:
        engine = self._engine
        now = engine.clock.now()
        error = turn.error
        events = turn.events
        if turn.finished:
            status, ended = entries.workflow_ended(
                cancelled=turn.cancelled,
                error=error,
                result=turn.result,
                reason=self._run.cancel_reason,
            )
            events = [*events, ended]
        else:
            busy = self._inflight.running_steps or any(
                c.kind == "step" and c.retry_at is None for c in turn.launch
            )
            status = RunStatus.RUNNING if busy else RunStatus.SUSPENDED
        if release:
            wake_at = self._inflight.earliest_timer() or now
        else:
            # Invariant (DESIGN §2.5): a leased run keeps a wake-up time no later than its lease's
            # expiry, so that it is recovered if we die. The one it has already does; leaving it
            # unchanged lets PostgreSQL update the row in place (HOT) instead of rewriting every
            # index entry of the run at each step.
            wake_at = now if self._run.wake_at is None else self._run.wake_at
        result = await engine.storage.append(
            AppendWrite(
                run_id=self._run.run_id,
                owner=engine.owner,
                expected_seq=self._seq,
                events=events,
                now=now,
                status=status,
                wake_at=None if turn.finished else wake_at,
                lease_expires_at=None if (release or turn.finished) else engine.lease_until(),
                result=turn.result if status is RunStatus.COMPLETED else None,
                error=error if status is RunStatus.FAILED else None,
                progressed=progressed,
                signals_seen=self._signals_seen,
            )
        )
        self._seq = result.last_seq
        self._status = status
        self._holds_lease = not (release or turn.finished)
        if not self._holds_lease:
            self._trace.released(status.value, error if status is RunStatus.FAILED else None)
        if turn.finished:
            if status is RunStatus.FAILED and error:
                self._log.error("workflow failed: %s: %s", error.get("type"), error.get("message"))
            else:
                self._log.info("workflow %s", status.value)
            engine.on_finished(
                dataclasses.replace(
                    self._run,
                    status=status,
                    result=turn.result if status is RunStatus.COMPLETED else None,
                    error=error if status is RunStatus.FAILED else None,
                    updated_at=now,
                    completed_at=now,
                    wake_at=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    last_seq=result.last_seq,
                )
            )
        elif result.signal_seq > self._signals_seen:
            self.poke()  # an outside writer touched the run; _check_signals reads what

    async def _finish_failed(self, record: dict[str, Any]) -> None:
        await self._commit(Turn(finished=True, error=record), progressed=False)

    async def _hand_back(self) -> None:
        """On shutdown: give the lease back so another worker takes the run at once."""
        try:
            await asyncio.shield(
                self._engine.storage.release_runs(
                    owner=self._engine.owner,
                    run_ids=[self._run.run_id],
                    now=self._engine.clock.now(),
                )
            )
        except (PyWorkflowError, asyncio.CancelledError):
            self._log.warning("could not hand the run back; its lease will expire instead")


def _merge(first: Turn, second: Turn) -> Turn:
    """``first`` followed by ``second``; the run's end, if either reached it, is kept."""
    first.events.extend(second.events)
    first.launch.extend(second.launch)
    if second.finished:
        first.finished, first.result, first.error, first.cancelled = (
            True,
            second.result,
            second.error,
            second.cancelled,
        )
    return first
