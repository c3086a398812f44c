"""One run's workflow code, replayed and advanced: pure, no I/O.

An activation owns the run's ``WorkflowLoop`` and its tasks. ``replay`` brings the code level
with the log; afterwards ``deliver`` feeds it one new outcome at a time. After each quiet point
it hands the driver a ``Turn``: the events to append (the outcome first, then the commands the
code issued and its end, if it ended) and the commands to launch once they are committed.

Invariant (DESIGN §2.2): commands are numbered when the code first awaits them, in the loop's
FIFO order, and compared with the log by kind and name at the same position. A mismatch is
recorded, never raised into user code (where ``except`` could hide it); the driver checks
``divergence`` after every quiet point, before anything executes.

Versioning: ``patched(change_id)`` is True where the log has its marker or where the code runs
past the log (it then logs the marker); False where the log goes on without one, because the
run was recorded by code from before the change. The answer is kept per change id for the rest
of the run. A False takes no position, so step ids (``name#n``) and the positions of the
commands after it are those of the old code.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Self, TypeVar

from pyworkflow._engine import new_events
from pyworkflow._engine.commands import Command, Turn
from pyworkflow._engine.context import current_activation, current_step, shielded
from pyworkflow._engine.failures import error_record
from pyworkflow._engine.loop import WorkflowLoop
from pyworkflow._engine.new_runs import decode_call
from pyworkflow._engine.outcomes import settle
from pyworkflow._engine.replay import LogCursor, outcome_command_id, read_history
from pyworkflow._engine.signals import ContinueAsNewSignal, EvictedSignal
from pyworkflow._engine.step_arguments import encode_step_call
from pyworkflow.events import EventType
from pyworkflow.exceptions import CancellationError, NonDeterminismError, SerializationError
from pyworkflow.storage.records import EventRecord, NewEvent, NewHook, NewRun, RunRecord

if TYPE_CHECKING:
    from pyworkflow._engine.clock import Clock
    from pyworkflow.serialization import Codec
    from pyworkflow.step import StepDefinition
    from pyworkflow.workflow import Workflow

__all__ = ["WorkflowActivation"]

_T = TypeVar("_T")


class WorkflowActivation:
    """The live state of one run's workflow code."""

    def __init__(
        self,
        *,
        run_id: str,
        workflow: Workflow[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        codec: Codec,
        clock: Clock,
    ) -> None:
        self.run_id = run_id
        self.workflow = workflow
        self._codec = codec
        self._clock = clock
        self._loop = WorkflowLoop()  # type: ignore[abstract]  # see WorkflowLoop's docstring
        self._args, self._kwargs = args, kwargs
        self._root: asyncio.Task[Any] | None = None
        self._counters: dict[str, int] = {}
        self._pending: dict[str, Command] = {}
        self._cursor = LogCursor(run_id)
        self._patches: dict[str, bool] = {}
        self._turn: Turn | None = None  # made when something is recorded (fewer objects)
        self._closed = False
        self.cancelled = False
        self.cancel_reason: str | None = None
        self.step_context: Any = None  # the StepContext set by set_step_context(), if any
        self.nesting_depth = 0  # 0 for a root run, 1 for its children ... (WORKFLOW_STARTED)

    @classmethod
    def for_run(
        cls, run: RunRecord, workflow: Workflow[..., Any], codec: Codec, clock: Clock
    ) -> Self:
        """The activation of ``run``, its call decoded with ``codec``."""
        args, kwargs = decode_call(run, codec)
        return cls(
            run_id=run.run_id, workflow=workflow, args=args, kwargs=kwargs, codec=codec, clock=clock
        )

    # --- driving ---------------------------------------------------------------------------------

    def replay(self, events: Sequence[EventRecord]) -> Turn:
        """Run the code against the log; returns new events and every command to (re)launch."""
        history = read_history(events)
        if events:
            self.nesting_depth = int(events[0].payload.get("nesting_depth", 0))
        self._cursor.start(history)
        context = contextvars.copy_context()
        context.run(current_activation.set, self)
        if current_step.get() is not None:
            # Started from inside a step (a child run a step starts): this is workflow code now.
            context.run(current_step.set, None)
        self._root = self._loop.spawn(self.workflow.fn(*self._args, **self._kwargs), context)
        self._quiet()
        for event in history.outcomes:
            if self._cursor.divergence is not None or self._root.done():
                break
            self._cursor.consume_outcome()
            self._resolve_logged(event)
            self._quiet()
        self._cursor.finish()
        turn = self._take_turn()
        if self._cursor.divergence is None:
            # Commands logged but without an outcome were in flight: launch them again.
            new = {c.command_id for c in turn.launch}
            logged = [c for c in self._pending.values() if c.command_id not in new]
            turn.launch = logged + turn.launch
        return turn

    def deliver(
        self,
        command_id: str,
        event: NewEvent,
        value: Any = None,
        error: BaseException | None = None,
    ) -> Turn:
        """Record a new outcome, let the code run to its next quiet point, return the turn."""
        self._recording().events.append(event)
        command = self._pending.pop(command_id, None)
        if command is not None and not command.future.done():
            if error is not None:
                command.future.set_exception(error)
            else:
                command.future.set_result(value)
        self._quiet()
        return self._take_turn()

    def deliver_outcome(self, event: NewEvent) -> Turn:
        """Record an outcome from the outside (a hook's payload, a child's end) and go on."""
        self._recording().events.append(event)
        command = self._pending.pop(outcome_command_id(event), None)
        if command is not None:
            settle(event, command, self._codec, self.run_id)
        self._quiet()
        return self._take_turn()

    def outside_waits(self) -> list[Command]:
        """Pending hooks and children: what only an outside writer can resolve."""
        return [c for c in self._pending.values() if c.kind in ("hook", "child")]

    def request_cancel(self, reason: str | None) -> Turn:
        """Log CANCELLATION_REQUESTED and raise CancellationError into pending timers."""
        self._recording().events.append(new_events.cancellation_requested(reason))
        self._apply_cancel(reason)
        self._quiet()
        return self._take_turn()

    def pending(self) -> list[Command]:
        """Commands issued and not yet resolved."""
        return list(self._pending.values())

    @property
    def codec(self) -> Codec:
        """The codec values of this run are encoded with."""
        return self._codec

    @property
    def position(self) -> int:
        """How many commands the code has issued so far, logged or new."""
        return self._cursor.position

    @property
    def divergence(self) -> NonDeterminismError | None:
        """The first mismatch between the code and the log, or None (the driver checks it)."""
        return self._cursor.divergence

    def close(self) -> None:
        """Let go of the code: cancel its tasks so their ``finally`` blocks run, then stop."""
        if self._closed:
            return
        self._closed = True
        for task in self._loop.unfinished_tasks():
            task.cancel()
        self._loop.run_until_quiet()
        for task in self._loop.unfinished_tasks():
            task.get_coro().close()
        self._loop.close()
        # The root task's context holds this activation: dropping the task breaks that cycle,
        # so a run's objects are freed when its driver lets go, not by a full GC later.
        self._root = None

    # --- called from workflow code (through primitives) ----------------------------------------

    async def call_step(
        self, definition: StepDefinition, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Issue a step command and wait for its outcome."""
        command_id = self._next_id(definition.name)
        encoded = None
        if self._cursor.next_logged() is None:
            # Past the log: encode before numbering the position, so a bad argument raises
            # here, records nothing, and replays the same way.
            encoded = encode_step_call(definition, command_id, args, kwargs, self._codec)
        future = self._loop.create_future()
        command = Command("step", command_id, definition.name, future, definition, args, kwargs)
        command.user_context = self.step_context
        if self._match(command):
            turn = self._recording()
            turn.events.append(new_events.step_started(command_id, definition.name, 1, encoded))
            command.attempt = 1
            turn.launch.append(command)
        return await future

    async def sleep_until(self, wake_at: float) -> None:
        """Issue a durable timer and wait for it."""
        command = self.issue("sleep", "sleep", "sleep", wake_at=wake_at)
        if command.logged is None:
            self.record(new_events.sleep_started(command.command_id, wake_at), launch=command)
        await command.future

    def issue(
        self, kind: str, counter: str, name: str, *, waits: bool = True, **fields: Any
    ) -> Command:
        """Number a new command (``counter#n``) and match it against the log.

        ``command.logged`` is its logged event when the log has it; when it is new, the caller
        records it with :meth:`record`. After a divergence it raises EvictedSignal (the driver
        reports the divergence). ``waits=False``: a command with no outcome to wait for (a
        child's cancel), which is done once recorded and never launched again on replay.
        """
        command = Command(kind, self._next_id(counter), name, self._loop.create_future(), **fields)
        if not self._match(command) and command.logged is None:
            raise EvictedSignal
        if not waits:
            del self._pending[command.command_id]
        return command

    def record(
        self,
        event: NewEvent,
        *,
        launch: Command | None = None,
        hook: NewHook | None = None,
        new_run: NewRun | None = None,
        child_cancel: bool = False,
    ) -> None:
        """Add a new command's event (and the rows it creates) to the turn being built.

        ``child_cancel``: the event is a child's cancel, whose request follows the commit.
        """
        turn = self._recording()
        turn.events.append(event)
        if child_cancel:
            turn.child_cancels += (event.payload,)
        if launch is not None:
            turn.launch.append(launch)
        if hook is not None:
            turn.hooks += (hook,)
        if new_run is not None:
            turn.new_runs += (new_run,)

    def continue_as_new(self, encoded_call: Any) -> ContinueAsNewSignal:
        """The signal that ends the code and starts a new run with ``encoded_call``."""
        self._check_live()
        return ContinueAsNewSignal(encoded_call)

    def side_effect(self, kind: str, make: Callable[[], _T]) -> _T:
        """Return the logged value of the next ``kind`` side effect, or make and log one."""
        self._check_live()
        logged = self._cursor.take("side_effect", kind)
        if logged is not None:
            value: _T = self._codec.decode(logged.payload["value"])
            return value
        if self._cursor.divergence is not None:
            raise EvictedSignal
        value = make()
        event = new_events.side_effect_recorded(kind, self._codec.encode(value))
        self._recording().events.append(event)
        return value

    def patched(self, change_id: str) -> bool:
        """Whether this run takes the new branch of change ``change_id``.

        True when the next logged command is this change's marker (consumed), or when the code
        runs past the log (the marker is logged); False, taking no position, while the log
        goes on with what the code before the change did. Kept for the rest of the run.
        """
        self._check_live()
        known = self._patches.get(change_id)
        if known is not None:
            return known
        if self._cursor.take_marker(change_id):
            decided = True
        elif self._cursor.replaying():
            decided = False
        else:
            self._cursor.position += 1
            self._recording().events.append(new_events.patch_marker(change_id))
            decided = True
        self._patches[change_id] = decided
        return decided

    def deprecate_patch(self, change_id: str) -> None:
        """Consume the marker of ``change_id`` if the log has it here; never log one."""
        self._check_live()
        self._cursor.take_marker(change_id)

    def now(self) -> float:
        """The executor's clock (for new timers and side effects)."""
        return self._clock.now()

    # --- internals ----------------------------------------------------------------------------

    def _check_live(self) -> None:
        if self._closed or self._cursor.divergence is not None:
            raise EvictedSignal
        if self.cancelled and not shielded.get():
            raise CancellationError(self.cancel_reason)

    def _next_id(self, name: str) -> str:
        self._check_live()
        n = self._counters.get(name, 0) + 1
        self._counters[name] = n
        return f"{name}#{n}"

    def _match(self, command: Command) -> bool:
        """Register a command; True if it is new (past the log), False if it was logged."""
        command.shielded = shielded.get()
        self._pending[command.command_id] = command
        return self._cursor.match(command)

    def _resolve_logged(self, event: EventRecord) -> None:
        payload = event.payload
        if event.type is EventType.CANCELLATION_REQUESTED:
            self._apply_cancel(payload.get("reason"))
            return
        command = self._pending.pop(outcome_command_id(event), None)
        if command is None:
            # The log has an outcome for a command the code has not issued this time: the
            # first logged command still unmatched is the one it stopped issuing.
            self._cursor.report_unissued()
            return
        settle(event, command, self._codec, self.run_id)

    def _apply_cancel(self, reason: str | None) -> None:
        """Interrupt every wait except steps (a running step finishes) and shielded commands."""
        self.cancelled, self.cancel_reason = True, reason
        for command in list(self._pending.values()):
            if command.kind != "step" and not command.shielded:
                del self._pending[command.command_id]
                command.future.set_exception(CancellationError(reason))

    def _quiet(self) -> None:
        self._loop.run_until_quiet()

    def _recording(self) -> Turn:
        """The turn being built, made on first use."""
        if self._turn is None:
            self._turn = Turn()
        return self._turn

    def _take_turn(self) -> Turn:
        turn, self._turn = self._turn or Turn(), None
        root = self._root
        if self._cursor.divergence is not None or root is None or not root.done():
            return turn
        turn.finished = True
        turn.launch = []
        if root.cancelled():
            turn.cancelled = True
            return turn
        exc = root.exception()
        if isinstance(exc, ContinueAsNewSignal):
            turn.continued = exc.encoded
        elif isinstance(exc, CancellationError):
            turn.cancelled = True
        elif exc is not None:
            turn.error = error_record(exc)
        else:
            try:
                turn.result = self._codec.encode(root.result(), path="workflow result", result=True)
            except SerializationError as err:
                turn.error = error_record(err)
        return turn
