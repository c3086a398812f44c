"""The Storage protocol: the narrow set of async methods every backend implements.

The engine and the executors talk to storage only through this protocol (DESIGN §2.8). Times are
float seconds since the epoch, always passed in by the caller from the executor's clock, so a
virtual clock drives the same queries. Values (arguments, results, event payloads) arrive already
encoded as JSON-compatible trees; storage stores and returns them without interpreting them.

Rules every backend keeps (the contract suite in tests/contract checks each):

- ``append`` is all or nothing and optimistic: it states the ``seq`` it expects to follow and the
  lease owner it holds; a stale one raises ConcurrencyConflictError and writes nothing.
- ``(run_id, seq)`` is unique and gap-free per run.
- A run is *runnable* when it is not terminal, its ``wake_at`` is due and nobody holds an
  unexpired lease on it. Claiming sets the lease; claiming a run whose previous lease expired
  counts one recovery.
- A lease is held while ``now < lease_expires_at``; a lapsed lease nobody else claimed still
  belongs to its owner (it may renew or append). A run leased at creation gets
  ``wake_at = lease_expires_at``, so it is recovered if its starter dies before its first turn.
- Outside writers (``request_cancel``, ``deliver_hook``, a child's end) never append events:
  they set their own columns or rows, bump ``signal_seq`` and make the run due. A lease holder
  that releases a run without having seen the latest ``signal_seq`` leaves it due at once, so
  no signal is lost to a race.
- An append that ends a run (a terminal status) in the same transaction: requests cancellation
  of the run's live children whose ``parent_close_policy`` is ``"cancel"`` (as
  ``request_cancel`` with reason ``"parent run <id> ended"``), and, unless the run ended
  ``continued_as_new``, signals its live parent (``signal_seq + 1``, due at once) so the
  parent's lease holder can log the child's end. Runs in ``new_runs`` are created by the same
  transaction; one whose ``continued_from`` is the appending run sets that run's
  ``continued_to``.
- Hooks belong to a run: created only by the run's appends (``AppendWrite.hooks``), delivered by
  outside callers (``deliver_hook``), expired by the lease holder (``expire_hook``). A token is
  stored only as its hash.
- Step leases belong to a run too (retention deletes them with it). They guard one attempt of a
  step that runs away from its run's driver (a Celery step task): the run itself is not leased
  meanwhile, so a step lease never touches the run's row, and the run's row never waits on it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pyworkflow.events import EventType, HookStatus, RunStatus
from pyworkflow.exceptions import CorruptRecordError

__all__ = [
    "SUSPECT_RECOVERIES",
    "AppendResult",
    "AppendWrite",
    "ChangeNotifier",
    "EventRecord",
    "HookRecord",
    "NewEvent",
    "NewHook",
    "NewRun",
    "RunCursor",
    "RunRecord",
    "StepLease",
    "Storage",
]


SUSPECT_RECOVERIES = 2
"""A run taken over this many times in a row without progress is a *suspect*.

One take-over is the ordinary recovery from a dead worker, and every run that worker held
shares it, so a killed process's runs are all taken over at once. A second one in a row means
the run may be what kills its workers: a claim can then ask for suspects apart
(``claim_runs(suspects=...)``), so an executor can hold one at a time and a crash is charged
to the run that caused it rather than to every run beside it.
"""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append; its ``seq`` is assigned by the append."""

    type: EventType
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored event of a run's log."""

    run_id: str
    seq: int
    type: EventType
    payload: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One stored run (a row of ``runs``)."""

    run_id: str
    workflow_name: str
    status: RunStatus
    args: Any
    result: Any
    error: dict[str, Any] | None
    idempotency_key: str | None
    parent_run_id: str | None
    created_at: float
    updated_at: float
    completed_at: float | None
    wake_at: float | None
    lease_owner: str | None
    lease_expires_at: float | None
    recovery_count: int
    last_seq: int
    signal_seq: int
    cancel_requested: bool
    cancel_reason: str | None
    parent_close_policy: str | None = None
    """For a child run: ``"cancel"`` (cancelled when its parent ends) or ``"abandon"``."""
    continued_from: str | None = None
    """The run that continued as new into this one."""
    continued_to: str | None = None
    """The run this one continued as new into."""
    previous_owner: str | None = None
    """Only on a record ``claim_runs`` returned: the owner whose lapsed lease the claim took
    over (a take-over from a dead or stalled worker); None when the lease was free."""
    damage: CorruptRecordError | None = None
    """Set when a cell of the stored row could not be read back: the error names the column,
    whose field reads as a stand-in (None; 0.0 for a creation or update time; ``failed`` for
    a status). Never stored."""


@dataclass(frozen=True, slots=True)
class NewHook:
    """A hook row, created by the append that logs its HOOK_CREATED.

    Attributes:
        token_hash: hex SHA-256 of the token; the token itself is never stored.
        hook_id: the hook's command id in its run, e.g. ``"hook:approval#1"``.
        name: the name the workflow gave it.
        payload_type: import path of the payload type (``"pkg.mod:Model"``), or None.
        expires_at: when it times out, or None.
    """

    token_hash: str
    hook_id: str
    name: str
    payload_type: str | None = None
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class HookRecord:
    """One stored hook. ``payload`` is the encoded payload once received."""

    token_hash: str
    run_id: str
    hook_id: str
    name: str
    status: HookStatus
    payload: Any
    payload_type: str | None
    created_at: float
    expires_at: float | None
    received_at: float | None


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to create together with its first events (WORKFLOW_STARTED at seq 1, ...).

    ``lease_owner``/``lease_expires_at`` let the starting process claim the run in the same
    transaction, so it can run it at once without a second round trip.
    """

    run_id: str
    workflow_name: str
    args: Any
    started_payload: dict[str, Any]
    now: float
    idempotency_key: str | None = None
    parent_run_id: str | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    first_events: tuple[NewEvent, ...] = ()
    status: RunStatus = RunStatus.PENDING
    parent_close_policy: str | None = None
    continued_from: str | None = None
    wake_at: float | None = None
    """For an unleased run: when it is first due (None: at ``now``). A run whose first steps
    were sent to workers at its creation is due only at their watchdog time."""

    def initial_events(self) -> list[tuple[int, EventType, dict[str, Any]]]:
        """``(seq, type, payload)`` of the events the run starts with.

        WORKFLOW_STARTED, then ``first_events``: the commands its starter's first turn issued,
        stored in the same transaction so that starting a run costs no commit of its own.
        """
        started = (1, EventType.WORKFLOW_STARTED, self.started_payload)
        return [started, *((seq, e.type, e.payload) for seq, e in enumerate(self.first_events, 2))]

    def initial_record(self) -> RunRecord:
        """The row this run starts as: pending, seq 1, leased when a lease was given."""
        leased = self.lease_owner is not None and self.lease_expires_at is not None
        return RunRecord(
            run_id=self.run_id,
            workflow_name=self.workflow_name,
            status=self.status,
            args=self.args,
            result=None,
            error=None,
            idempotency_key=self.idempotency_key,
            parent_run_id=self.parent_run_id,
            created_at=self.now,
            updated_at=self.now,
            completed_at=None,
            # Invariant (DESIGN §2.5): a leased run still has a wake-up time, so that it is
            # claimed again (as a recovery) if its starter dies before its first append.
            wake_at=self.lease_expires_at if leased else (self.wake_at or self.now),
            lease_owner=self.lease_owner if leased else None,
            lease_expires_at=self.lease_expires_at if leased else None,
            recovery_count=0,
            last_seq=1 + len(self.first_events),
            signal_seq=0,
            cancel_requested=False,
            cancel_reason=None,
            parent_close_policy=self.parent_close_policy,
            continued_from=self.continued_from,
        )


@dataclass(frozen=True, slots=True)
class AppendWrite:
    """One atomic turn of a run: new events plus the run row's new state.

    Attributes:
        run_id: the run.
        owner: the lease owner making the write; must hold the run's lease.
        expected_seq: the run's ``last_seq`` the writer saw; the events get the following ones.
        events: the events to append, in order (may be empty to only update the row).
        now: the executor's clock.
        status: the run's new status, or None to keep it.
        wake_at: when the run wants its next turn (None: only an outside signal wakes it).
        lease_expires_at: the renewed lease, or None to release the lease with this write.
        result: the encoded result, when the run completed.
        error: the error record, when the run failed.
        progressed: an outcome was recorded, so the run's recovery count starts again.
        signals_seen: the ``signal_seq`` the writer has acted on (see the module docstring).
        hooks: hook rows to create with this write (their HOOK_CREATED is in ``events``).
        new_runs: runs to create with this write, unleased and due at once: child runs
            (``parent_run_id`` is this run) and the run a continue-as-new starts.
    """

    run_id: str
    owner: str
    expected_seq: int
    events: Sequence[NewEvent]
    now: float
    status: RunStatus | None = None
    wake_at: float | None = None
    lease_expires_at: float | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    progressed: bool = False
    signals_seen: int = 0
    hooks: Sequence[NewHook] = ()
    new_runs: Sequence[NewRun] = ()


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append left behind, with the outside signals the writer has not seen yet."""

    last_seq: int
    signal_seq: int
    cancel_requested: bool


@dataclass(frozen=True, slots=True)
class StepLease:
    """The lease of one attempt of a step executed away from its run's driver (a Celery step task).

    Duplicate broker messages for one attempt find its lease taken and stand back; a worker
    executing a long step renews it (heartbeat); and ``deliveries`` counts how often the attempt
    was taken, so a step that keeps killing its worker can be failed after a bounded number.

    Attributes:
        run_id: the step's run.
        step_id: the step's id in its run (``name#n``).
        attempt: the attempt the lease is for (1, 2, ...).
        owner: who holds it (a worker's id for that task), or None.
        lease_expires_at: when it lapses unless renewed, or None.
        deliveries: how many times this attempt was taken (acquired); a worker that keeps
            dying shows here.
    """

    run_id: str
    step_id: str
    attempt: int
    owner: str | None
    lease_expires_at: float | None
    deliveries: int


@dataclass(frozen=True, slots=True)
class RunCursor:
    """Keyset position for ``list_runs``: the last run of the previous page."""

    created_at: float
    run_id: str


@runtime_checkable
class Storage(Protocol):
    """What the engine needs from a database. See the module docstring for the rules."""

    url: str
    """Where the data lives, password masked, for messages and logs."""

    async def open(self) -> None:
        """Connect and create or check the schema. Idempotent."""

    async def close(self) -> None:
        """Release connections and threads. Idempotent."""

    async def create_run(self, run: NewRun) -> tuple[RunRecord, bool]:
        """Insert a run and its WORKFLOW_STARTED event in one transaction.

        Returns the record and True, or, when ``idempotency_key`` is already taken by a run of
        the same workflow, that run and False. The key taken by another workflow raises
        IdempotencyConflictError and writes nothing.
        """

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""

    async def list_runs(
        self,
        *,
        statuses: Collection[RunStatus] | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        before: RunCursor | None = None,
        parent_run_id: str | None = None,
    ) -> list[RunRecord]:
        """Runs newest first, filtered; pass the last record's cursor as ``before`` to page on.

        ``parent_run_id`` lists the children of that run (including the runs their
        continue-as-new started, which keep the parent).
        """

    async def load_events(self, run_id: str, after_seq: int = 0) -> list[EventRecord]:
        """Events of a run with ``seq > after_seq``, in seq order."""

    async def append(self, write: AppendWrite) -> AppendResult:
        """Apply one turn atomically; ConcurrencyConflictError if the seq or lease is stale.

        ``result``/``error`` of None leave the stored ones unchanged. An unknown run raises
        RunNotFoundError.

        Concurrent appends of different runs may share one database transaction (group commit)
        but each succeeds or fails on its own.
        """

    async def claim_runs(
        self,
        *,
        owner: str,
        now: float,
        lease_expires_at: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
        run_ids: Collection[str] | None = None,
        due_only: bool = True,
        suspects: bool | None = None,
    ) -> list[RunRecord]:
        """Lease up to ``limit`` runnable runs, earliest ``wake_at`` first.

        ``workflow_names`` limits the claim to workflows this worker can run; ``run_ids`` to
        given runs. A run whose previous lease expired gets ``recovery_count + 1``, and its
        record names that lease's owner in ``previous_owner``.

        ``suspects=True`` claims only runs that this claim takes over for at least the
        ``SUSPECT_RECOVERIES``-th time in a row without progress (counting this claim's
        recovery), ``False`` only the others, ``None`` either.

        ``due_only=False`` (meant for ``run_ids``) also claims runs whose ``wake_at`` has not
        come: any live run with a ``wake_at`` (so not a run waiting only on an outside signal)
        and a free or lapsed lease. A process told to drive a given run (a broker message: a
        step finished, or a sweeper sent it) takes it although its ``wake_at`` is a watchdog
        time still ahead.
        """

    async def take_due_runs(
        self,
        *,
        now: float,
        until: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
    ) -> list[str]:
        """Take up to ``limit`` runnable runs to announce, earliest ``wake_at`` first.

        For a sweeper that sends one broker message per due run instead of running it: the
        runs ``claim_runs`` would claim (due, free or lapsed lease, of ``workflow_names``) get
        ``wake_at = until`` and their ids come back; lease, status and recovery count stay as
        they were. A run so taken is not due again before ``until``, so a lost message is sent
        again only then. Concurrent callers never get the same run.
        """

    async def renew_leases(
        self, *, owner: str, run_ids: Collection[str], now: float, lease_expires_at: float
    ) -> set[str]:
        """Extend the leases ``owner`` still holds; returns the ids it still holds."""

    async def release_runs(self, *, owner: str, run_ids: Collection[str], now: float) -> None:
        """Hand runs back (clean shutdown): drop the lease and make them due at once."""

    async def request_cancel(self, run_id: str, *, now: float, reason: str | None) -> bool:
        """Record a cancel request and make the run due; False if the run is unknown or ended."""

    async def reopen_failed_run(
        self, run_id: str, *, now: float, payload: dict[str, Any]
    ) -> RunRecord:
        """Append WORKFLOW_RESUMED to a failed run and make it pending and due, atomically.

        Raises RunNotFoundError, or InvalidRunStateError if the run has not failed.
        """

    async def get_hook(self, token_hash: str) -> HookRecord | None:
        """The hook whose token hashes to ``token_hash``, or None."""

    async def list_hooks(
        self, *, run_id: str | None = None, status: HookStatus | None = None, limit: int = 100
    ) -> list[HookRecord]:
        """Hooks newest first, of one run and/or in one status."""

    async def deliver_hook(self, token_hash: str, payload: Any, *, now: float) -> HookRecord:
        """Store a hook's payload and signal its run, atomically; returns the updated hook.

        Only a hook that is ``waiting``, not past ``expires_at`` (``now < expires_at``), of a run
        that has not ended, takes a payload; of concurrent calls exactly one succeeds. The run
        gets ``signal_seq + 1`` and is due at once.

        Raises (writing nothing):
            HookNotFoundError: no such hook, or its run has ended.
            HookAlreadyReceivedError: it already has a payload.
            HookExpiredError: it expired, or ``now`` is past its ``expires_at``.
        """

    async def expire_hook(self, run_id: str, hook_id: str, *, now: float) -> HookRecord:
        """The lease holder's timeout of a hook: ``waiting`` becomes ``expired``.

        Returns the hook as it now stands: ``expired`` (also if it already was), or
        ``received`` when a delivery won the race (log that payload instead).

        Raises:
            HookNotFoundError: the run has no such hook.
        """

    async def next_wake_at(self, *, workflow_names: Collection[str] | None = None) -> float | None:
        """When the next run becomes claimable, or None.

        A leased run counts at the later of its ``wake_at`` and its lease expiry: that is when
        a crashed holder's run can be taken over.
        """

    async def acquire_step(
        self,
        run_id: str,
        step_id: str,
        *,
        attempt: int,
        owner: str,
        now: float,
        lease_expires_at: float,
    ) -> StepLease | None:
        """Take the lease of attempt ``attempt`` of a step before executing it.

        The row is created when missing. It is taken when it has no owner, its lease lapsed
        (``lease_expires_at <= now``), ``owner`` already holds it, or it belongs to another
        attempt (then it starts afresh: deliveries 0). Taking sets owner and lease and adds one
        to ``deliveries``; the row comes back as stored.

        Returns None and writes nothing when another owner holds a live lease on the same
        attempt, or when the run is unknown or has ended (terminal status). Of concurrent calls
        by different owners, exactly one succeeds.
        """

    async def renew_step(
        self, run_id: str, step_id: str, *, owner: str, now: float, lease_expires_at: float
    ) -> bool:
        """Extend the step lease ``owner`` holds (also a lapsed one nobody else took).

        False, writing nothing, when the row is gone or another owner holds it. (``now`` is the
        caller's clock, as for ``renew_leases``; a step lease row keeps no time of its own.)
        """

    async def release_step(self, run_id: str, step_id: str, *, owner: str) -> None:
        """Delete the step's lease row if ``owner`` holds it; otherwise do nothing.

        Called once the attempt's outcome is logged, or the attempt is over. The lease only
        keeps two executions of one attempt apart: a late duplicate message finds no row and
        takes the attempt afresh, so whether the attempt still needs executing is the log's
        to say.
        """

    async def list_step_leases(self, run_id: str) -> list[StepLease]:
        """The run's step lease rows, by ``step_id``."""

    async def delete_ended_runs(self, *, ended_before: float, limit: int) -> list[str]:
        """Delete up to ``limit`` ended runs with ``completed_at < ended_before``, and their rows.

        Retention: a run in a terminal status goes with its events (and every other row that
        belongs to it) in one transaction per call; a live run is never touched, nor a failed
        run that ``resume`` reopened meanwhile. Which qualifying runs go first is unspecified;
        call again until fewer than ``limit`` come back. A deleted run's idempotency key is
        free again. Returns the ids of the runs deleted (empty when ``limit <= 0``).
        """


@runtime_checkable
class ChangeNotifier(Protocol):
    """What a storage that can push changes offers besides ``Storage`` (PostgreSQL does).

    Executors subscribe to wake at once instead of at their next poll: ``("runnable", run_id)``
    when an outside writer made a run due (claim it), ``("ended", run_id)`` when a run reached
    a terminal status (its waiters can read the result), and ``("runnable", "*")`` when
    notifications may have been missed (look at storage). Notifications only wake: storage
    stays the truth and polling stays the fallback.
    """

    def subscribe(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(kind, run_id)`` for each change, on this event loop."""

    def unsubscribe(self, callback: Callable[[str, str], None]) -> None:
        """Stop calling ``callback``."""
