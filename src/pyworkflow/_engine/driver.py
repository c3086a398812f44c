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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyworkflow._engine.activation import Command, Turn, WorkflowActivation
from pyworkflow._engine.attempts import AttemptResult, attempt_context, run_attempt
from pyworkflow._engine.context import StepContext, current_activation, current_step
from pyworkflow._engine.events import EVENT_FORMAT, EventType, RunStatus
from pyworkflow._engine.failures import error_record, rebuild_error
from pyworkflow.exceptions import CancellationError, ConcurrencyConflictError, PyWorkflowError
from pyworkflow.logging import run_logger
from pyworkflow.storage.protocol import AppendWrite, EventRecord, NewEvent, RunRecord

if TYPE_CHECKING:
    from pyworkflow._engine.clock import Clock
    from pyworkflow.serialization import Codec
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

    def lease_until(self) -> float:
        """The expiry of a lease taken or renewed now."""
        return self.clock.now() + self.settings.lease_seconds


@dataclass(slots=True)
class _Done:
    """An inbox item: an attempt ended, or a timer or a signal fired."""

    command: Command | None
    kind: str
    result: AttemptResult | None = None


class RunDriver:
    """Executes the turns of one leased run until it lets the run go."""

    def __init__(
        self,
        engine: Engine,
        run: RunRecord,
        workflow: Workflow[..., Any],
        history: list[EventRecord] | None = None,
    ) -> None:
        self._engine = engine
        self._run = run
        self._workflow = workflow
        self._seq = run.last_seq
        self._signals_seen = run.signal_seq
        self._status = run.status
        self._inbox: asyncio.Queue[_Done] = asyncio.Queue()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running_steps = 0
        self._timers: dict[str, float] = {}
        self._log = run_logger(run.run_id, run.workflow_name)
        self._activation: WorkflowActivation | None = None
        self._check_pending = False
        self._history = history
        self._holds_lease = True
        self._prepared: Turn | None = None
        self._inline: tuple[Command, StepContext] | None = None

    @property
    def holds_lease(self) -> bool:
        """False once the driver's last commit released the run (it ended or suspended)."""
        return self._holds_lease

    @property
    def run_id(self) -> str:
        """The run this driver owns."""
        return self._run.run_id

    async def drive(self) -> None:
        """Run turns until the run ends, suspends past the horizon, or the lease is lost."""
        try:
            await self._drive()
        except ConcurrencyConflictError as exc:
            self._log.warning("lost the run to another worker: %s", exc)
        except asyncio.CancelledError:
            await self._hand_back()
            raise
        finally:
            self._stop_tasks()
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
            turn = _merge(turn, activation.request_cancel(run.cancel_reason))
        for command in turn.launch:
            if command.kind == "step" and command.attempt == 0:
                # Re-opened by resume(): its fresh budget starts with a logged attempt 1.
                turn.events.append(_next_attempt(command))
        turn = self._refuse_unstarted(turn)
        # Always commit after a replay: it renews the lease, records any new commands and
        # shows the run as running (or suspended) again after a take-over.
        await self._commit(turn, progressed=False)
        return None if turn.finished else turn

    async def _loop(self, turn: Turn) -> None:
        """Launch what the code issued, then turn outcomes into commits until the run lets go."""
        self._launch(turn.launch)
        while True:
            if self._running_steps == 0 and self._suspend_due():
                await self._commit(Turn(), progressed=False, release=True)
                self._log.info("suspended until %s", min(self._timers.values()))
                return
            item = await self._next_item()
            turn = Turn()
            if self._check_pending:
                # Before the outcomes: a cancel seen now is logged ahead of what the code
                # does next, so the next primitive raises CancellationError.
                self._check_pending = False
                turn = await self._check_signals()
            turn = _merge(turn, self._apply(item))
            while not self._inbox.empty() and not turn.finished:
                turn = _merge(turn, self._apply(self._inbox.get_nowait()))
            turn = self._refuse_unstarted(turn)
            if not turn.events and not turn.finished:
                continue
            await self._commit(turn, progressed=True)
            if turn.finished:
                return
            self._launch(turn.launch)

    def poke(self) -> None:
        """An outside writer touched the run (e.g. a cancel request): look at its row."""
        self._check_pending = True
        self._inbox.put_nowait(_Done(None, "wake"))

    async def _check_signals(self) -> Turn:
        run = await self._engine.storage.get_run(self._run.run_id)
        activation = self._activation
        assert activation is not None
        if run is None or run.signal_seq <= self._signals_seen:
            return Turn()
        self._signals_seen = run.signal_seq
        if run.cancel_requested and not activation.cancelled:
            self._run = run
            return activation.request_cancel(run.cancel_reason)
        return Turn()

    def _suspend_due(self) -> bool:
        """Let the run go if it only waits on timers beyond the horizon (or on nothing)."""
        if not self._timers:
            return False
        first = min(self._timers.values())
        return first - self._engine.clock.now() > self._engine.settings.horizon_seconds

    def _apply(self, item: _Done) -> Turn:
        activation = self._activation
        assert activation is not None
        command = item.command
        if item.kind == "wake":
            return Turn()
        assert command is not None
        if item.kind == "timer":
            self._timers.pop(command.command_id, None)
            event = NewEvent(
                EventType.SLEEP_COMPLETED, {"v": EVENT_FORMAT, "sleep_id": command.command_id}
            )
            return activation.deliver(command.command_id, event)
        if item.kind == "retry_due":
            self._timers.pop(command.command_id, None)
            command.retry_at = None
            return Turn(events=[_next_attempt(command)], launch=[command])
        result = item.result
        assert result is not None
        self._running_steps -= 1
        if result.ok:
            self._log.info(
                "step %s completed",
                command.command_id,
                extra={"step_id": command.command_id, "attempt": command.attempt},
            )
            event = NewEvent(
                EventType.STEP_COMPLETED,
                {
                    "v": EVENT_FORMAT,
                    "step_id": command.command_id,
                    "result": result.encoded,
                },
            )
            return activation.deliver(command.command_id, event, value=result.value)
        if result.retry_in is not None:
            retry_at = self._engine.clock.now() + result.retry_in
            self._log.warning(
                "step %s attempt %d failed, retrying in %.3gs: %s",
                command.command_id,
                command.attempt,
                result.retry_in,
                result.error,
                extra={"step_id": command.command_id, "attempt": command.attempt},
            )
            command.retry_at = retry_at
            return Turn(
                events=[
                    NewEvent(
                        EventType.STEP_RETRYING,
                        {
                            "v": EVENT_FORMAT,
                            "step_id": command.command_id,
                            "attempt": command.attempt,
                            "error": result.record,
                            "retry_at": retry_at,
                        },
                    )
                ],
                launch=[command],
            )
        self._log.error(
            "step %s failed: %s",
            command.command_id,
            result.error,
            extra={"step_id": command.command_id, "attempt": command.attempt},
        )
        assert result.record is not None
        event = NewEvent(
            EventType.STEP_FAILED,
            {
                "v": EVENT_FORMAT,
                "step_id": command.command_id,
                "error": result.record,
            },
        )
        error = rebuild_error(result.record, command.command_id)
        return activation.deliver(command.command_id, event, error=error)

    # --- launching work ------------------------------------------------------------------------

    def _launch(self, commands: list[Command]) -> None:
        activation = self._activation
        assert activation is not None
        for command in commands:
            if command.kind == "sleep":
                assert command.wake_at is not None
                self._start_timer(command, command.wake_at, "timer")
            elif command.retry_at is not None:
                self._start_timer(command, command.retry_at, "retry_due")
            else:
                self._start_attempt(command, alone=len(commands) == 1)

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
                if c.kind == "step" and c.retry_at is None and c.command_id not in self._tasks
            ]
            if not unstarted:
                return turn
            turn.launch = [c for c in turn.launch if c not in unstarted]
            for command in unstarted:
                error = CancellationError(self._run.cancel_reason)
                event = NewEvent(
                    EventType.STEP_FAILED,
                    {
                        "v": EVENT_FORMAT,
                        "step_id": command.command_id,
                        "error": error_record(error),
                    },
                )
                turn = _merge(turn, activation.deliver(command.command_id, event, error=error))
        return turn

    def _start_timer(self, command: Command, wake_at: float, kind: str) -> None:
        self._timers[command.command_id] = wake_at
        clock, inbox = self._engine.clock, self._inbox

        async def fire() -> None:
            await clock.sleep_until(wake_at)
            inbox.put_nowait(_Done(command, kind))

        self._spawn(command.command_id, fire())

    def _start_attempt(self, command: Command, *, alone: bool = False) -> None:
        definition = command.definition
        assert definition is not None
        attempt = max(command.attempt, 1)
        command.attempt = attempt
        context = StepContext(
            self._run.run_id, self._run.workflow_name, command.command_id, command.name, attempt
        )
        self._running_steps += 1
        if alone and not self._tasks and self._inbox.empty():
            # The only thing in flight: the loop awaits it directly (see _run_inline).
            self._inline = (command, context)
            return
        inbox, codec = self._inbox, self._engine.codec

        async def execute() -> None:
            result = await run_attempt(definition, context, command.args, command.kwargs, codec)
            inbox.put_nowait(_Done(command, "attempt", result))

        self._spawn(command.command_id, execute(), attempt_context(context))

    async def _next_item(self) -> _Done:
        if self._inline is None:
            return await self._inbox.get()
        return await self._run_inline()

    async def _run_inline(self) -> _Done:
        """Run the one step in flight in the driver's own task.

        A sequential workflow has one step in flight at a time; awaiting it here spares a
        task, a queue hand-off and a loop iteration per step. The step still sees only its
        step context, set around the call.
        """
        assert self._inline is not None
        (command, context), self._inline = self._inline, None
        assert command.definition is not None
        activation_token = current_activation.set(None)
        step_token = current_step.set(context)
        try:
            result = await run_attempt(
                command.definition, context, command.args, command.kwargs, self._engine.codec
            )
        finally:
            current_step.reset(step_token)
            current_activation.reset(activation_token)
        return _Done(command, "attempt", result)

    def _spawn(self, key: str, coro: Any, context: Any = None) -> None:
        task = asyncio.get_running_loop().create_task(coro, context=context)
        self._tasks[key] = task
        task.add_done_callback(
            lambda t: self._tasks.pop(key, None) if self._tasks.get(key) is t else None
        )

    def _stop_tasks(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        self._tasks.clear()

    # --- storage ---------------------------------------------------------------------------------

    async def _commit(self, turn: Turn, *, progressed: bool, release: bool = False) -> None:
        engine = self._engine
        now = engine.clock.now()
        error = turn.error
        if turn.finished:
            if turn.cancelled:
                status = RunStatus.CANCELLED
                events = [
                    *turn.events,
                    NewEvent(
                        EventType.WORKFLOW_CANCELLED,
                        {"v": EVENT_FORMAT, "reason": self._run.cancel_reason},
                    ),
                ]
            elif error is not None:
                status = RunStatus.FAILED
                events = [
                    *turn.events,
                    NewEvent(EventType.WORKFLOW_FAILED, {"v": EVENT_FORMAT, "error": error}),
                ]
            else:
                status = RunStatus.COMPLETED
                events = [
                    *turn.events,
                    NewEvent(
                        EventType.WORKFLOW_COMPLETED, {"v": EVENT_FORMAT, "result": turn.result}
                    ),
                ]
        else:
            events = turn.events
            busy = self._running_steps or any(
                c.kind == "step" and c.retry_at is None for c in turn.launch
            )
            status = RunStatus.RUNNING if busy else RunStatus.SUSPENDED
        wake_at = now
        if release and self._timers:
            wake_at = min(self._timers.values())
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
        if turn.finished:
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


def _next_attempt(command: Command) -> NewEvent:
    """Count the command's next attempt and the STEP_STARTED that logs it."""
    command.attempt += 1
    return NewEvent(
        EventType.STEP_STARTED,
        {
            "v": EVENT_FORMAT,
            "step_id": command.command_id,
            "name": command.name,
            "attempt": command.attempt,
            "args": None,
        },
    )


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
