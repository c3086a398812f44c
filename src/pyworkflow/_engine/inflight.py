"""What one run is waiting on: its running steps and its timers, and the inbox of their outcomes.

The driver launches commands here and takes outcomes back one at a time (``next``), in the
order they arrived, so it can feed them to the workflow in that order. A step that is the only
thing in flight runs in the driver's own task (``next`` awaits it): a sequential workflow, the
common case, then costs no task, queue hand-off or extra loop iteration per step.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyworkflow._engine.attempts import AttemptResult, attempt_context, run_attempt
from pyworkflow._engine.context import StepInfo, current_activation, current_step, early_start
from pyworkflow._engine.remote import RemoteStep, sent_away

if TYPE_CHECKING:
    from pyworkflow._engine.clock import Clock
    from pyworkflow._engine.commands import Command
    from pyworkflow._engine.remote import FinishedAttempt, StepSender
    from pyworkflow.serialization import Codec
    from pyworkflow.step import StepDefinition

__all__ = ["Arrival", "InFlight"]

_DEADLINE = "\x00deadline"  # the timers key of the run's deadline (no command id looks so)
# Never written to: with no step sender, no step is sent away (see InFlight.__init__).
_NEVER_WATCHED: dict[str, float] = {}
_NEVER_SENT: list[RemoteStep] = []


@dataclass(slots=True)
class Arrival:
    """An outcome in the inbox.

    ``kind``: ``"attempt"`` (a step attempt ended, see ``result``), ``"timer"`` (a sleep came
    due), ``"retry_due"`` (a step's retry delay passed), ``"hook_timeout"`` (a hook's timeout
    passed), ``"deadline"`` (the run's ``max_duration`` passed) or ``"wake"`` (look at the
    run's row).
    """

    command: Command | None
    kind: str
    result: AttemptResult | None = None


class InFlight:
    """The steps and timers of one run, and the inbox their outcomes arrive in."""

    def __init__(
        self,
        *,
        run_id: str,
        workflow_name: str,
        clock: Clock,
        codec: Codec,
        resolve_step: Callable[[StepDefinition], StepDefinition] | None = None,
        remote: StepSender | None = None,
        finished: FinishedAttempt | None = None,
    ) -> None:
        self._run_id, self._workflow_name = run_id, workflow_name
        self._remote = remote
        self._finished = finished
        # Remote steps in flight, by command id: when to look at each again (its watchdog).
        # Without a sender nothing is ever added: share empty ones (fewer objects per run).
        self.remote_watch: dict[str, float] = {} if remote is not None else _NEVER_WATCHED
        self._to_send: list[RemoteStep] = [] if remote is not None else _NEVER_SENT
        self._clock, self._codec = clock, codec
        self._resolve_step = resolve_step
        # A deque and one waiter rather than an asyncio.Queue: a run in flight is a few
        # objects fewer, which the garbage collector walks over at each full collection.
        self._inbox: collections.deque[Arrival] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._timers: dict[str, float] = {}
        self._inline: tuple[Command, StepInfo] | None = None
        self._early_logged: asyncio.Future[None] | None = None
        self.running_steps = 0

    # --- launching -----------------------------------------------------------------------------

    def launch(self, commands: list[Command]) -> None:
        """Start the steps and timers of ``commands`` (already logged)."""
        for command in commands:
            if command.kind == "sleep":
                assert command.wake_at is not None
                self._start_timer(command, command.wake_at, "timer")
            elif command.kind == "hook":
                if command.wake_at is not None:
                    self._start_timer(command, command.wake_at, "hook_timeout")
            elif command.kind == "child":
                pass  # its end arrives as an outside signal
            elif command.retry_at is not None:
                self._start_timer(command, command.retry_at, "retry_due")
            elif self._take_finished(command):
                pass
            elif self._remote is not None and sent_away(self._remote, command):
                self._to_send.append(RemoteStep(command.command_id, command.name, command.attempt))
                self.remote_watch[command.command_id] = self._clock.now() + (
                    self._remote.dispatch_grace
                )
            else:
                self._start_attempt(command, alone=len(commands) == 1)

    def launch_early(self, commands: list[Command]) -> list[Command]:
        """Start now the ``early`` steps of ``commands``, whose start is being logged; those.

        Each runs in a task of its own (never inline: the driver is about to await the commit
        that logs its start, and the step's storage call should queue right behind it). What
        an early step does only once its start is durable waits for :meth:`early_logged`
        (``context.start_logged()``).
        """
        early = [
            c
            for c in commands
            if c.kind == "step"
            and c.retry_at is None
            and c.definition is not None
            and c.definition.early
        ]
        if early:
            self._early_logged = asyncio.get_running_loop().create_future()
        for command in early:
            self._start_attempt(command, alone=False, logged=self._early_logged)
        return early

    def early_logged(self) -> None:
        """The commit that logs the starts of the early steps launched last is done."""
        logged, self._early_logged = self._early_logged, None
        if logged is not None and not logged.done():
            logged.set_result(None)

    def _take_finished(self, command: Command) -> bool:
        """Arrive at once with the outcome of an attempt executed elsewhere, if it is this one."""
        finished = self._finished
        if finished is None or finished.step_id != command.command_id:
            return False
        self._finished = None
        if finished.attempt + finished.cut_short != command.attempt:
            return False  # a stale attempt's outcome: the log has moved on
        self.running_steps += 1
        self._put(Arrival(command, "attempt", finished.result))
        return True

    def hold_remote(self, commands: list[Command], watch: dict[str, float]) -> None:
        """Track replayed remote steps that are alive elsewhere; ``watch``: when to look again.

        They are not launched (nor sent again): a worker runs them or their message waits.
        """
        for command in commands:
            self.remote_watch[command.command_id] = watch[command.command_id]

    @property
    def has_unsent(self) -> bool:
        """True if remote steps were launched and not sent yet (only with a ``StepSender``)."""
        return bool(self._to_send)

    def take_unsent(self) -> list[RemoteStep]:
        """The remote steps launched since the last call, to send now that they are logged."""
        unsent, self._to_send = self._to_send, []
        return unsent

    def set_deadline(self, deadline: float) -> None:
        """Arrive as ``"deadline"`` when the run's ``max_duration`` has passed."""
        self._timers[_DEADLINE] = deadline
        clock = self._clock

        async def fire() -> None:
            await clock.sleep_until(deadline)
            self._put(Arrival(None, "deadline"))

        self._spawn(_DEADLINE, fire())

    def is_started(self, command_id: str) -> bool:
        """True if the command's step or timer is under way (here or sent away)."""
        return command_id in self._tasks or command_id in self.remote_watch

    def earliest_timer(self) -> float | None:
        """The wake time of the first pending timer, or None."""
        return min(self._timers.values()) if self._timers else None

    def earliest_wake(self) -> float | None:
        """The first pending timer or remote step watchdog, or None."""
        first = self.earliest_timer()
        if self.remote_watch:
            watchdog = min(self.remote_watch.values())
            first = watchdog if first is None else min(first, watchdog)
        return first

    def wake(self) -> None:
        """Put a ``"wake"`` arrival in the inbox (an outside writer touched the run)."""
        self._put(Arrival(None, "wake"))

    def stop(self) -> None:
        """Cancel every step and timer still under way."""
        for task in list(self._tasks.values()):
            task.cancel()
        self._tasks.clear()

    # --- taking outcomes -------------------------------------------------------------------------

    async def next(self) -> Arrival:
        """The next outcome: the inline step's, else the first in the inbox."""
        if self._inline is not None:
            return self._settle(await self._run_inline())
        while not self._inbox:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._settle(self._inbox.popleft())

    def ready(self) -> Arrival | None:
        """An outcome that has already arrived, or None."""
        return self._settle(self._inbox.popleft()) if self._inbox else None

    def _settle(self, arrival: Arrival) -> Arrival:
        if arrival.command is not None:
            if arrival.kind == "attempt":
                self.running_steps -= 1
            else:
                self._timers.pop(arrival.command.command_id, None)
        return arrival

    # --- internals -------------------------------------------------------------------------------

    def _put(self, arrival: Arrival) -> None:
        self._inbox.append(arrival)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _start_timer(self, command: Command, wake_at: float, kind: str) -> None:
        self._timers[command.command_id] = wake_at
        clock = self._clock

        async def fire() -> None:
            await clock.sleep_until(wake_at)
            self._put(Arrival(command, kind))

        self._spawn(command.command_id, fire())

    def _definition(self, command: Command) -> StepDefinition:
        """The step definition an attempt of ``command`` runs (a fake, under the test toolkit)."""
        definition = command.definition
        assert definition is not None
        return definition if self._resolve_step is None else self._resolve_step(definition)

    def _start_attempt(
        self, command: Command, *, alone: bool, logged: asyncio.Future[None] | None = None
    ) -> None:
        command.attempt = max(command.attempt, 1)
        context = StepInfo(
            self._run_id,
            self._workflow_name,
            command.command_id,
            command.name,
            command.attempt,
            command.interrupted,
            user_context=command.user_context,
        )
        self.running_steps += 1
        # A finished task (a timer that just fired) leaves _tasks only in its done callback,
        # which runs after this: it must not keep the step from running inline.
        if alone and not self._inbox and all(t.done() for t in self._tasks.values()):
            self._inline = (command, context)
            return
        codec = self._codec
        definition = self._definition(command)

        async def execute() -> None:
            result = await run_attempt(definition, context, command.args, command.kwargs, codec)
            self._put(Arrival(command, "attempt", result))

        step_context = attempt_context(context)
        if logged is not None:
            step_context.run(early_start.set, logged)
        self._spawn(command.command_id, execute(), step_context)

    async def _run_inline(self) -> Arrival:
        """Run the one step in flight in the caller's task, in its own step context."""
        assert self._inline is not None
        (command, context), self._inline = self._inline, None
        definition = self._definition(command)
        # The driver's task runs no workflow code: its activation is None already, as a rule.
        activation_token = None
        if current_activation.get() is not None:
            activation_token = current_activation.set(None)
        step_token = current_step.set(context)
        try:
            result = await run_attempt(
                definition, context, command.args, command.kwargs, self._codec
            )
        finally:
            current_step.reset(step_token)
            if activation_token is not None:
                current_activation.reset(activation_token)
        return Arrival(command, "attempt", result)

    def _spawn(self, key: str, coro: Any, context: Any = None) -> None:
        task = asyncio.get_running_loop().create_task(coro, context=context)
        self._tasks[key] = task
        task.add_done_callback(
            lambda t: self._tasks.pop(key, None) if self._tasks.get(key) is t else None
        )
