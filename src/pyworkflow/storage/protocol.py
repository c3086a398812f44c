"""The Storage protocol: the narrow set of async methods every backend implements.

The engine and the executors talk to storage only through this protocol (DESIGN §2.8). Times are
float seconds since the epoch, always passed in by the caller from the executor's clock, so a
virtual clock drives the same queries. Values (arguments, results, event payloads) arrive already
encoded as JSON-compatible trees; storage stores and returns them without interpreting them.
The records the methods take and return are the dataclasses of ``records.py``.

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
- Schedules (``create_schedule`` ... ``fire_schedule``) are rows of their own, written with
  optimistic versions: every write states the ``version`` it read and a stale one writes
  nothing. Firing a schedule stores its new state and creates the runs of its slots in one
  transaction, so a slot is consumed exactly when its run exists; a slot's run has an
  idempotency key derived from the schedule and the slot, so a slot fired twice (two
  schedulers, a restart) finds its run instead of starting another.
- A run moves between storages whole (``read_run_snapshots``, ``write_run_snapshots``): its
  row with every row that belongs to it, read in one consistent view and written in one
  transaction; what is written reads back equal.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol, runtime_checkable

from pyworkflow.events import HookStatus, RunStatus, ScheduleStatus
from pyworkflow.storage.records import (
    AppendResult,
    AppendWrite,
    EventRecord,
    HookRecord,
    NewRun,
    OwnerRecord,
    RunCursor,
    RunRecord,
    RunSnapshot,
    ScheduleFire,
    ScheduleRecord,
    StepLease,
    StepOffer,
)

__all__ = ["ChangeNotifier", "Storage"]


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
        schedule_id: str | None = None,
        run_id_prefix: str | None = None,
        tags: Collection[str] | None = None,
    ) -> list[RunRecord]:
        """Runs newest first, filtered; pass the last record's cursor as ``before`` to page on.

        ``parent_run_id`` lists the children of that run (including the runs their
        continue-as-new started, which keep the parent); ``schedule_id`` the runs that
        schedule started; ``run_id_prefix`` keeps the runs whose id starts with it
        (case-sensitive); ``tags``, the runs that carry every one of them.
        """

    async def count_runs(
        self, *, workflow_name: str | None = None, since: float | None = None
    ) -> dict[RunStatus, int]:
        """How many runs are in each status, of one workflow or all: ``{status: count}``.

        ``since`` counts only the runs created at or after it. Statuses with no run are absent.
        """

    async def count_workflow_runs(self, *, since: float | None = None) -> dict[str, int]:
        """How many runs each workflow has: ``{workflow_name: count}`` (created since ``since``).

        Workflows with no run are absent.
        """

    async def count_workflow_statuses(
        self, *, since: float | None = None
    ) -> dict[str, dict[RunStatus, int]]:
        """How many runs each workflow has in each status: ``{workflow_name: {status: count}}``.

        ``since`` counts only the runs created at or after it. Workflows with no run, and
        statuses with none, are absent. One grouped count, however many workflows there are.
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
        queues: Collection[str] | None = None,
    ) -> list[RunRecord]:
        """Lease up to ``limit`` runnable runs, earliest ``wake_at`` first.

        ``workflow_names`` limits the claim to workflows this worker can run; ``queues`` to
        runs whose ``queue`` is one this worker serves (None: any queue; empty: none);
        ``run_ids`` to given runs. A run whose previous lease expired gets
        ``recovery_count + 1``, and its record names that lease's owner in ``previous_owner``.

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

    async def next_wake_at(
        self,
        *,
        workflow_names: Collection[str] | None = None,
        queues: Collection[str] | None = None,
    ) -> float | None:
        """When the next run of ``workflow_names`` and ``queues`` (None: any) becomes claimable.

        None when there is none. A leased run counts at the later of its ``wake_at`` and its
        lease expiry: that is when a crashed holder's run can be taken over.
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

    async def offer_steps(self, run_id: str, offers: Sequence[StepOffer], *, now: float) -> None:
        """Offer attempts of the run's steps to the local workers of their queues.

        Each offer is a step lease row without owner, with its ``queue`` and ``offered_at``
        (``now``), written only while the run is live. A row of the same attempt is left as it
        is (offered already, or being executed); a row of another attempt is replaced, its
        ``deliveries`` back to 0. Workers list offers (``list_offered_steps``) and take one
        with ``acquire_step``, which keeps its queue, so a lapsed lease of it (a worker that
        died) is listed again.
        """

    async def list_offered_steps(
        self,
        *,
        queues: Collection[str] | None,
        workflow_names: Collection[str],
        now: float,
        limit: int,
    ) -> list[StepLease]:
        """Up to ``limit`` offered attempts that a worker may take now, oldest offer first.

        Offers (rows with a ``queue``) of live runs of ``workflow_names`` whose row has no
        owner or a lapsed lease (``lease_expires_at <= now``), of ``queues`` (None: any
        queue; empty: none). Celery step leases (no queue) are never listed.
        """

    async def announce_owner(
        self, owner: str, *, now: float, on_lost: Callable[[], None] | None = None
    ) -> bool:
        """Make the liveness of lease owner ``owner`` (this process) observable to others.

        Until ``withdraw_owner`` or the process's death, another process's
        ``take_over_dead_owners`` sees ``owner`` alive, even stopped or slow; once it died,
        dead, at once. How is the backend's: SQLite, a file lock the kernel drops with the
        process (seen from this host); PostgreSQL, a session lock the server drops with the
        connection (seen from anywhere). ``on_lost`` is called should the presence go while
        the process lives (PostgreSQL: its connection dropped); the owner then announces
        itself again.

        Returns False when this announcement follows a lost presence that others may have
        taken for the owner's death (PostgreSQL: its connection dropped while the server kept
        running): the owner must give its runs up, since they may be taken over already.
        True otherwise (a first announcement; a presence lost to a server restart, during
        which nobody is declared dead).
        """

    async def withdraw_owner(self, owner: str) -> None:
        """Stop showing ``owner`` alive: from now on it counts as dead (see below)."""

    async def list_owners(self) -> list[OwnerRecord]:
        """Every announced owner, and whether it is alive now; writes nothing."""

    async def take_over_dead_owners(self, *, now: float) -> list[str]:
        """Free what announced owners that are dead now held; their names.

        Their run leases lapse at ``now`` (their runs are due now, and the next claim takes
        them over as a recovery, exactly as after a lapsed lease); their step leases (and
        those of their deliveries, owners named ``<owner>/...``) lapse too, and those steps'
        runs come due. An owner never announced, or one whose liveness cannot be observed
        from here, is left to its leases.
        """

    async def delete_ended_runs(self, *, ended_before: float, limit: int) -> list[str]:
        """Delete up to ``limit`` ended runs with ``completed_at < ended_before``, and their rows.

        Retention: a run in a terminal status goes with its events (and every other row that
        belongs to it) in one transaction per call; a live run is never touched, nor a failed
        run that ``resume`` reopened meanwhile. Which qualifying runs go first is unspecified;
        call again until fewer than ``limit`` come back. A deleted run's idempotency key is
        free again. Returns the ids of the runs deleted (empty when ``limit <= 0``).
        """

    async def read_run_snapshots(self, run_ids: Collection[str]) -> list[RunSnapshot]:
        """Each run whole (row, events, hooks, step leases), all read in one consistent view.

        For copying runs to another storage (``pyworkflow.storage.copy_runs``): no write that
        commits meanwhile shows in part, so a run's log ends at its row's ``last_seq`` and its
        hooks are the ones its log created. In the order of ``run_ids``, each once; an unknown
        id is left out.

        Raises:
            CorruptRecordError: an event or hook of one of the runs cannot be read back (a
                damaged run row reads with ``damage`` set, as ``get_run`` returns it).
        """

    async def write_run_snapshots(
        self, snapshots: Sequence[RunSnapshot], *, replacing: Sequence[RunRecord] = ()
    ) -> None:
        """Store runs whole, exactly as given, in one transaction: all of them or nothing.

        First each run of ``replacing`` goes, with every row of it; it must still be stored
        exactly as that record says (as a snapshot of it wrote it), so a copy can take back or
        refresh what it wrote but never a run that moved on here. Then each snapshot is
        inserted as it is: leases, wake-up times and signals included (a copy clears leases
        before it writes, ``copy_runs``); no notification is sent and no run is signalled.

        Raises (writing nothing):
            CopyConflictError: a snapshot's run id, idempotency key or hook token hash is
                taken here (by a run not being replaced), or a run of ``replacing`` is gone
                or changed; the error names the runs.
        """

    async def create_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord:
        """Insert a schedule (stored with ``version`` 0 and returned as stored).

        A deleted schedule of the same id is replaced. Raises ScheduleExistsError, writing
        nothing, when one that is not deleted has the id.
        """

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, deleted ones included, or None."""

    async def list_schedules(
        self,
        *,
        status: ScheduleStatus | None = None,
        workflow_name: str | None = None,
        limit: int = 1000,
    ) -> list[ScheduleRecord]:
        """Schedules by id, filtered (deleted ones only when ``status`` asks for them)."""

    async def update_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord | None:
        """Store ``schedule`` if the stored one is at ``schedule.version``; returns it as stored.

        The stored version becomes ``schedule.version + 1``. None, writing nothing, when the
        version is stale or the schedule is gone.
        """

    async def due_schedules(
        self,
        *,
        now: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
        after: tuple[float, str] | None = None,
    ) -> list[ScheduleRecord]:
        """Up to ``limit`` schedules with ``due_at <= now``, of ``workflow_names``.

        In ``(due_at, schedule_id)`` order; ``after``: only those past this pair, so a
        scheduler reads what is due a page at a time, each page from where the last ended
        (a keyset: rows fired meanwhile leave the range, none is read twice). Only active
        schedules have a ``due_at``. A read: schedulers decide with ``fire_schedule``, whose
        version check lets one of them win.
        """

    async def next_schedule_due_at(
        self, *, workflow_names: Collection[str] | None = None, after: float | None = None
    ) -> float | None:
        """The earliest ``due_at`` of the schedules of ``workflow_names`` (None: any), or None.

        ``after``: only a ``due_at`` later than this. A scheduler that has just fired what was
        due asks for what comes after: on PostgreSQL the index entries of the rows it just
        moved (dead until vacuumed) lie before that bound, and are not walked.
        """

    async def fire_schedule(self, fire: ScheduleFire) -> list[str] | None:
        """Store a schedule's new state, create its runs and cancel requests, in one transaction.

        Returns the ids of the runs of ``fire.runs``, in order (for a run whose idempotency
        key was already taken, the run that holds it: the slot's run exists already). The
        stored ``total_runs`` grows by the number of runs the fire created (not those it
        found) and ``last_run_id`` names the last of the returned runs. A fire writes only a
        schedule's slots and counts (``next_slot_at``, ``due_at``, ``buffered``,
        ``total_runs``, ``skipped_runs``, ``last_slot_at``, ``last_run_id``, ``updated_at``):
        its spec, call, policy and status stay as stored. None,
        writing nothing, when the stored schedule is not at ``fire.schedule.version`` (another
        scheduler fired it, or a user changed it) or is gone.
        """

    async def fire_schedules(self, fires: Sequence[ScheduleFire]) -> list[list[str] | None]:
        """Several ``fire_schedule`` at once, each standing or falling on its own.

        What each returns, in order. For a scheduler's tick that fires many schedules at once:
        a backend may write them in one transaction (PostgreSQL: a few statements for the
        lot; SQLite: group commit), each fire still all or nothing. At most one fire per
        schedule.
        """

    async def live_schedule_runs(self, schedule_ids: Collection[str]) -> dict[str, list[str]]:
        """The runs of these schedules that have not ended, by schedule id, oldest first."""

    async def count_schedule_runs(self, schedule_id: str) -> dict[RunStatus, int]:
        """How many stored runs the schedule started, by status (statuses with none left out)."""


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
