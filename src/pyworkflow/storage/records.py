"""The records of the Storage protocol: what its methods take and return.

Plain frozen dataclasses, shared by every backend and by the engine, the executors and the CLI,
which read runs and events through them. Times are float seconds since the epoch from the
executor's clock; values (arguments, results, payloads) are JSON-compatible trees, stored and
returned as they are. The rules the methods keep with them are in ``protocol.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyworkflow.events import EventType, HookStatus, RunStatus, ScheduleStatus
from pyworkflow.exceptions import CorruptRecordError
from pyworkflow.queues import DEFAULT_QUEUE
from pyworkflow.storage.streams import StreamSnapshot

__all__ = [
    "SUSPECT_RECOVERIES",
    "AppendResult",
    "AppendWrite",
    "EventRecord",
    "HookRecord",
    "NewEvent",
    "NewHook",
    "NewRun",
    "OwnerRecord",
    "RunCursor",
    "RunRecord",
    "RunSnapshot",
    "ScheduleFire",
    "ScheduleRecord",
    "StepLease",
]


@dataclass(frozen=True, slots=True)
class OwnerRecord:
    """A process that announced itself as a lease owner (a worker, or a process running runs).

    Attributes:
        owner: its owner name (``host:pid:id``), the ``lease_owner`` of the runs it holds.
        host, pid: where it runs.
        started_at: when it announced itself (None where storage does not keep it).
        alive: whether storage sees it alive now (its lock held); a dead one is forgotten at
            the next look for dead owners, and its runs taken over.
    """

    owner: str
    host: str
    pid: int
    started_at: float | None
    alive: bool


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
    queue: str = DEFAULT_QUEUE
    """The queue whose workers execute the run (``pyworkflow.queues``); claims filter on it."""
    schedule_id: str | None = None
    """The schedule that started the run, or None."""
    schedule_slot_at: float | None = None
    """For a run a schedule started: the slot it was started for (epoch seconds)."""
    tags: tuple[str, ...] = ()
    """Its workflow's ``@workflow(tags=...)`` when it started; ``list_runs(tags=)`` filters."""
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
    queue: str = DEFAULT_QUEUE
    """The queue whose workers execute the run: its workflow's (``pyworkflow.queues``)."""
    schedule_id: str | None = None
    """The schedule that starts the run (its idempotency key is derived from the slot)."""
    schedule_slot_at: float | None = None
    """The slot of that schedule the run is for (epoch seconds)."""
    tags: tuple[str, ...] = ()
    """Labels stored with the run: its workflow's ``@workflow(tags=...)``."""

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
            queue=self.queue,
            schedule_id=self.schedule_id,
            schedule_slot_at=self.schedule_slot_at,
            tags=self.tags,
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
        queue: the queue the attempt was offered to (``offer_steps``: a step of a local
            worker's queue), or None for a Celery step task's lease.
        offered_at: when it was offered, or None.
    """

    run_id: str
    step_id: str
    attempt: int
    owner: str | None
    lease_expires_at: float | None
    deliveries: int
    queue: str | None = None
    offered_at: float | None = None


@dataclass(frozen=True, slots=True)
class StepOffer:
    """An attempt of a step offered to the local workers of a queue (``Storage.offer_steps``).

    Attributes:
        step_id: the step's id in its run (``name#n``).
        attempt: the attempt to execute (its STEP_STARTED is logged).
        queue: the queue whose workers may execute it.
    """

    step_id: str
    attempt: int
    queue: str


@dataclass(frozen=True, slots=True)
class RunCursor:
    """Keyset position for ``list_runs``: the last run of the previous page."""

    created_at: float
    run_id: str


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """One run whole, as one consistent read saw it: its row and every row that belongs to it.

    What ``Storage.read_run_snapshots`` returns and ``Storage.write_run_snapshots`` stores, so
    that a run moves between storages (``pyworkflow.storage.copy_runs``) with nothing left
    behind: its log, its hooks (token hashes and all, so an old token still resumes it) and its
    step leases. A snapshot that a storage stores reads back equal.

    Attributes:
        run: the run's row.
        events: its log, in ``seq`` order (1, 2, ... ``run.last_seq``).
        hooks: its hooks, oldest first.
        step_leases: its step lease rows, by ``step_id``.
        streams: the stream runs it drives, by ``stream_run_id``, with their rows.
    """

    run: RunRecord
    events: tuple[EventRecord, ...]
    hooks: tuple[HookRecord, ...] = ()
    step_leases: tuple[StepLease, ...] = ()
    streams: tuple[StreamSnapshot, ...] = ()


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """One stored schedule (a row of ``schedules``).

    Storage keeps it as given and interprets only ``status``, ``due_at`` and ``version``; what
    the other fields mean is the scheduler's (``pyworkflow.schedules``).

    Attributes:
        schedule_id: its id.
        workflow_name: the workflow its runs are of.
        spec: when it fires, a JSON object (cron, interval or calendar, time zone, bounds ...).
        args: the encoded call (``{"args", "kwargs"}``) every run starts with.
        overlap_policy: what a slot does while an earlier run is still going.
        catchup_window: seconds: missed slots younger than this still start; None starts the
            latest missed slot only.
        status: active, paused or deleted.
        next_slot_at: the next slot not yet handled (epoch seconds), or None when none is left.
        due_at: when a scheduler should look at it next (the next slot plus its jitter, or
            sooner while a buffered slot waits for a run to end); None when nothing is to do
            (paused, deleted, no slot left). Invariant: a scheduler's tick is one indexed
            query on this column.
        buffered: slots waiting for the running run to end (BUFFER_ONE, BUFFER_ALL).
        total_runs: runs it started (slots, triggers, backfills).
        skipped_runs: slots it did not start: missed beyond the catch-up window, or refused
            by the overlap policy.
        last_slot_at: the slot of the last run it started, or None.
        last_run_id: the last run it started, or None.
        created_at: when it was created.
        updated_at: when it was last written.
        version: bumped by every write; a write states the version it read (optimistic), so
            two schedulers, or a scheduler and a user's update, never both write one state.
    """

    schedule_id: str
    workflow_name: str
    spec: dict[str, Any]
    args: Any
    overlap_policy: str
    catchup_window: float | None
    status: ScheduleStatus
    next_slot_at: float | None
    due_at: float | None
    buffered: tuple[float, ...]
    total_runs: int
    skipped_runs: int
    last_slot_at: float | None
    last_run_id: str | None
    created_at: float
    updated_at: float
    version: int = 0


@dataclass(frozen=True, slots=True)
class ScheduleFire:
    """One firing of a schedule: its new state and the runs it starts, in one transaction.

    Attributes:
        schedule: the schedule's new row; its ``version`` is the one the writer read, and the
            stored row gets ``version + 1``. Storage adds the runs the fire creates to its
            ``total_runs`` and names the last in ``last_run_id``.
        runs: the runs its slots start, each with an idempotency key derived from the schedule
            and the slot, so a slot's run is created once however many schedulers fire it.
        cancel: ids of runs to ask to cancel (CANCEL_OTHER), as ``request_cancel`` would.
        cancel_reason: the reason those runs are given.
        now: the scheduler's clock.
    """

    schedule: ScheduleRecord
    runs: Sequence[NewRun] = ()
    cancel: Sequence[str] = ()
    cancel_reason: str | None = None
    now: float = 0.0
