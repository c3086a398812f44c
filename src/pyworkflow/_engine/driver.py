"""Driving one leased run: replay, commit, execute local steps, wait, suspend.

A driver owns a run while its process holds the run's lease. It replays the log into a
``WorkflowActivation``, commits what the code issued (one append per quiet point: a step's
completion goes out together with the commands the code issues next, DESIGN §6), runs the
steps, and waits. It lets the run go when the run ends, when it only waits on timers further
away than the horizon (DESIGN §2.6), when it loses its lease, or when its process stops.

Invariant (DESIGN §2.1): a step executes only after its STEP_STARTED is committed, and its
result is handed to the workflow only together with the append that logs it. The one
exception is an ``early_step`` (pyworkflow's own, idempotent in storage): it starts alongside
the commit of its STEP_STARTED, so that on a storage with group commit both share one
transaction; what it must not do before that commit (the stream batch step's user code) waits
for it (``context.start_logged``); its outcome still reaches the workflow only after that
commit, and a run that loses the commit replays and runs it again, to the same outcome.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyworkflow._engine import (
    hook_tokens,
    interruptions,
    letting_go,
    new_events,
    outcome_turns,
    outside_writes,
    remote,
    tracing,
)
from pyworkflow._engine.activation import WorkflowActivation
from pyworkflow._engine.child_handles import request_logged, request_unanswered
from pyworkflow._engine.commands import Command, Turn
from pyworkflow._engine.driver_view import DriverView
from pyworkflow._engine.engine import Engine
from pyworkflow._engine.failures import error_record, takeover_refusal
from pyworkflow._engine.inflight import Arrival, InFlight
from pyworkflow._engine.turn_writes import deadline_of, ended_record, turn_write
from pyworkflow.events import RunStatus
from pyworkflow.exceptions import (
    ConcurrencyConflictError,
    CorruptRecordError,
    WorkflowTimeoutError,
)
from pyworkflow.logging import run_logger
from pyworkflow.storage.records import (
    EventRecord,
    RunRecord,
)

if TYPE_CHECKING:
    from pyworkflow.workflow import Workflow

__all__ = ["FirstTurn", "RunDriver"]


@dataclass(slots=True)
class FirstTurn:
    """What the first turn left for the driver: it launches ``turn`` once the run is stored.

    ``stored``: the turn's events went into the run's creation; otherwise (it created hooks or
    child runs, rows that creating a run cannot write) the driver's first commit writes them.
    """

    turn: Turn
    activation: WorkflowActivation
    stored: bool
    deadline: float | None


class RunDriver(DriverView):
    """Executes the turns of one leased run until it lets the run go.

    Args:
        engine: what the process's drivers share.
        run: the run's row, as leased.
        workflow: its workflow.
        finished: an attempt executed elsewhere (a Celery step task) whose outcome this
            driver logs instead of executing the step.
        history: the run's log, when the caller has just read it.
        first: the run's first turn, run before the run was stored (``first_turn``).
    """

    def __init__(
        self,
        engine: Engine,
        run: RunRecord,
        workflow: Workflow[..., Any],
        finished: remote.FinishedAttempt | None = None,
        history: list[EventRecord] | None = None,
        first: FirstTurn | None = None,
    ) -> None:
        # Between an arrival (an outcome, a signal) and its commit; and before its first
        # commit, for a run taken from storage (its replay may change what it waits on).
        super().__init__(run, turning=first is None)
        self._engine = engine
        self._workflow = workflow
        self._seq = run.last_seq
        self._remote = engine.remote.for_run(run.queue) if engine.remote is not None else None
        self._inflight = InFlight(
            run_id=run.run_id,
            workflow_name=run.workflow_name,
            clock=engine.clock,
            codec=engine.codec,
            resolve_step=engine.resolve_step,
            remote=self._remote,
            finished=finished,
        )
        self._finished = finished
        self._finished_step = finished.step_id if finished is not None else None
        self._log = run_logger(run.run_id, run.workflow_name)
        self._trace = tracing.NO_TRACE
        self._activation: WorkflowActivation | None = None
        self._check_pending = False
        self._history = history  # the log, when already known
        self._prepared = first.turn if first is not None else None
        self._prepared_committed = first is None or first.stored
        self._deadline = first.deadline if first is not None else None
        self._draining = False
        if first is not None:
            self._activation = first.activation
            if first.stored:  # its events are the new run's, after WORKFLOW_STARTED
                self._seq += len(first.turn.events)
                busy = any(c.kind == "step" for c in first.turn.launch)
                self._status = RunStatus.RUNNING if busy else RunStatus.SUSPENDED

    async def drive(self) -> None:
        """Run turns until the run ends, suspends past the horizon, or the lease is lost."""
        with tracing.turn(self._run.run_id, self._run.workflow_name) as self._trace:
            try:
                await self._drive()
            except ConcurrencyConflictError as exc:
                self._log.warning("lost the run to another worker: %s", exc)
            except letting_go.LeaseInDoubt as exc:
                self._log.warning("%s; letting the run go", exc)
                await self._hand_back()
            except asyncio.CancelledError:
                await self._hand_back()
                raise
            finally:
                self._inflight.stop()
                if self._activation is not None:
                    self._activation.close()
                self._status_moved()

    # --- the turn loop ---------------------------------------------------------------------

    @property
    def prepared_launch(self) -> list[Command]:
        """What the first turn (``first_turn``) launches once the run is stored."""
        return list(self._prepared.launch) if self._prepared is not None else []

    def discard(self) -> None:
        """Let go of a driver that will not drive (its run was not created)."""
        if self._activation is not None:
            self._activation.close()
            self._activation = None
        self._prepared = None

    async def _drive(self) -> None:
        turn = self._prepared or await self._begin()
        self._prepared = None
        if turn is None:
            return
        if not self._prepared_committed:
            await self._commit(turn, progressed=False)
        await self._loop(turn)

    async def _begin(self) -> Turn | None:
        """Replay the log and commit the first turn; the turn to launch, or None if it ended."""
        # Before anything reads the run's values: a driver that crashed on them at every
        # take-over would otherwise never get here, and the run would be taken over forever.
        workflow = self._workflow
        limit = workflow.max_recovery_attempts
        refusal = takeover_refusal(
            self._run,
            self._engine.settings.max_recoveries if limit is None else limit,
            recover=workflow.recover_on_worker_loss,
        )
        if refusal is None:
            try:
                return await self._replay()
            except CorruptRecordError as exc:  # its log cannot be read: never will, either
                refusal = error_record(exc)
        self._log.error("%s", refusal["message"])
        await self._finish_failed(refusal)
        return None

    async def _replay(self) -> Turn | None:
        engine, run = self._engine, self._run
        events = self._history or await engine.storage.load_events(run.run_id)
        self._history = None
        # A child's cancel logged by a driver that died before making the request.
        await request_unanswered(engine, events)
        self._seq = events[-1].seq if events else run.last_seq
        self._deadline = deadline_of(events)
        self._log.debug("replaying %d events (recovery %d)", len(events), run.recovery_count)
        activation = self._activation = WorkflowActivation.for_run(
            run, self._workflow, engine.codec, engine.clock
        )
        turn = activation.replay(events)
        if activation.divergence is not None:
            self._log.error("%s", activation.divergence)
            await self._finish_failed(error_record(activation.divergence))
            return None
        if self._deadline is not None and engine.clock.now() >= self._deadline:
            await self._time_out()
            return None
        # A cancel, hooks delivered and children ended while the run was let go.
        turn = await outside_writes.take_signals(engine.storage, activation, run, self._log, turn)
        turn = interruptions.log_reruns(turn, run, self._remote, self._log, self._finished)
        for command in turn.launch:
            if command.kind == "step" and command.attempt == 0:
                # Re-opened by resume(): its fresh budget starts with a logged attempt 1.
                command.attempt += 1
                turn.events.append(new_events.step_started(command.command_id, command.name, 1))
        turn = self._refuse_unstarted(turn)
        inflight, finished = self._inflight, self._finished_step
        settled = await remote.settle_replayed(
            engine, self._remote, inflight, turn, self.run_id, finished, self._log
        )
        if settled:
            return turn  # steps away, nothing to record (see settle_replayed)
        # Always commit after a replay: it renews the lease, records any new commands and
        # shows the run as running (or suspended) again after a take-over.
        await self._commit(turn, progressed=False)
        return None if turn.finished else turn

    async def _loop(self, turn: Turn) -> None:
        """Launch what the code issued, then turn outcomes into commits until the run lets go."""
        inflight, activation = self._inflight, self._activation
        assert activation is not None
        if self._deadline is not None:
            inflight.set_deadline(self._deadline)
        inflight.launch(turn.launch)
        await self._send_remote()
        while True:
            if self._draining and inflight.running_steps == 0:
                await self._hand_back()
                return
            if inflight.running_steps == 0 and self._suspend_due():
                await self._commit(Turn(), progressed=False, release=True)
                self._log_suspended()
                return
            if self._turning:
                self._turning = False
                self._status_moved()
            arrival: Arrival | None = await inflight.next()
            self._turning = True
            turn = Turn()
            if self._check_pending:
                # Before the outcomes: a cancel seen now is logged ahead of what the code
                # does next, so the next primitive raises CancellationError.
                self._check_pending = False
                turn = await self._check_signals()
            while arrival is not None and not turn.finished:
                if arrival.kind == "deadline":
                    await self._time_out()
                    return
                turn = turn.merge(await self._arrive(arrival))
                arrival = inflight.ready()
            turn = self._refuse_unstarted(turn)
            if self._draining and not turn.finished:
                turn = outcome_turns.outcomes_only(turn)
                if turn.events:
                    await self._commit(turn, progressed=True)
                continue
            if outcome_turns.only_timers(turn, inflight):
                turn = await outcome_turns.sleep_through(
                    activation, inflight, self._engine.clock, turn
                )
            if not turn.events and not turn.finished:
                continue
            if remote.only_away(self._remote, turn):
                inflight.launch(turn.launch)
                release = inflight.running_steps == 0 and self._suspend_due()
                await self._commit(turn, progressed=True, release=release)
                await self._send_remote()
                if release:
                    self._log_suspended()
                    return
                continue
            early = [] if turn.finished else inflight.launch_early(turn.launch)
            if early:
                # Let them reach their storage calls first: queued back to back with the
                # commit below, with no look at the selector between (which lets a database
                # thread take the commit alone), they share its transaction.
                await asyncio.sleep(0)
            await self._commit(turn, progressed=True)
            if early:
                inflight.early_logged()
            if turn.finished:
                return
            inflight.launch([c for c in turn.launch if c not in early] if early else turn.launch)
            await self._send_remote()

    async def _send_remote(self) -> None:
        if self._inflight.has_unsent:
            await remote.send_launched(self._remote, self._inflight, self.run_id)

    def _log_suspended(self) -> None:
        letting_go.log_suspended(self._log, self._inflight)

    def drain(self) -> None:
        """Let the run go once the step attempts running now have ended and are logged.

        For a process that stops: what runs now may finish (it would otherwise run again
        elsewhere), nothing new starts (the commands the code issues meanwhile are not
        logged: the next driver replays and issues them again), then the run is handed back.
        """
        self._draining = True
        self._inflight.wake()

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
            self._run = run  # its cancel reason, for the steps refused from now on
        return await outside_writes.take_signals(
            self._engine.storage, activation, run, self._log, Turn()
        )

    def _suspend_due(self) -> bool:
        engine = self._engine
        return letting_go.suspend_due(
            self._inflight, self._activation, engine.settings.horizon_seconds, engine.clock.now()
        )

    async def _arrive(self, arrival: Arrival) -> Turn:
        """The turn one arrival makes: its outcome logged and fed to the workflow."""
        activation = self._activation
        assert activation is not None
        if arrival.kind == "hook_timeout" and arrival.command is not None:
            if arrival.command.future.done():
                # Its payload was logged first (an outside write), while the run kept its
                # coroutine and so the hook's timer: the timeout has nothing left to end.
                return Turn()
            return await outside_writes.expire_hook(
                self._engine.storage, activation, arrival.command
            )
        return outcome_turns.outcome_turn(activation, arrival, self._engine.clock.now(), self._log)

    def _refuse_unstarted(self, turn: Turn) -> Turn:
        activation = self._activation
        assert activation is not None
        return outcome_turns.refuse_unstarted(
            activation, turn, self._inflight.is_started, self._run.cancel_reason
        )

    # --- storage ---------------------------------------------------------------------------------

    async def _commit(self, turn: Turn, *, progressed: bool, release: bool = False) -> None:
        engine, inflight = self._engine, self._inflight
        now = engine.clock.now()
        busy = bool(
            inflight.running_steps
            or inflight.remote_watch
            or any(c.kind == "step" and c.retry_at is None for c in turn.launch)
        )
        written = turn_write(
            self._run,
            self._workflow,
            turn,
            owner=engine.owner,
            expected_seq=self._seq,
            now=now,
            lease_until=engine.lease_until(),
            busy=busy,
            release=release,
            released_wake_at=inflight.earliest_wake() if release else None,
            progressed=progressed,
            signals_seen=self._signals_seen,
        )
        write, status = written.write, written.status
        try:
            result = await engine.storage.append(write)
        finally:
            if turn.hooks:
                hook_tokens.pending_rows.difference_update(h.token_hash for h in turn.hooks)
        if write.new_runs:
            engine.on_new_runs([r.run_id for r in write.new_runs])
        if write.lease_expires_at is not None and not engine.lease_holds(write.lease_expires_at):
            raise letting_go.LeaseInDoubt(
                f"the commit came back {engine.clock.now() - now:.1f}s after it was made, too "
                "late to be sure the run's lease still holds (storage slow or unreachable)"
            )
        self._seq = result.last_seq
        self._status = status
        if self._changed is not None:
            self._status_moved()
        self._holds_lease = not (release or turn.finished)
        if progressed:
            self._suspect = False  # storage reset its recovery count with this commit
        if not self._holds_lease:
            self._trace.released(status.value, write.error)
        if turn.finished:
            error = write.error
            if error:
                self._log.error("workflow failed: %s: %s", error.get("type"), error.get("message"))
            else:
                self._log.info("workflow %s", status.value)
            engine.on_finished(ended_record(self._run, written, result.last_seq))
        elif result.signal_seq > self._signals_seen:
            self.poke()  # an outside writer touched the run; _check_signals reads what
        if turn.child_cancels:
            await request_logged(engine, turn.child_cancels)  # it takes effect once logged

    async def _finish_failed(self, record: dict[str, Any]) -> None:
        await self._commit(Turn(finished=True, error=record), progressed=False)

    async def _time_out(self) -> None:
        """Fail the run that passed its deadline; running steps are abandoned."""
        limit = self._workflow.max_duration or 0.0
        error = WorkflowTimeoutError(self._run.run_id, limit)
        self._log.error("%s", error)
        await self._finish_failed(error_record(error))

    async def _hand_back(self) -> None:
        await letting_go.hand_back(self._engine, self._run.run_id, self._log)
        self._holds_lease = False
