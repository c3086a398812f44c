"""The run records of the Storage protocol: a run, its event log and the writes that grow it.

A run to create (``NewRun``) and its stored row (``RunRecord``), the events of its log, one
atomic turn (``AppendWrite``) and what it left behind, the keyset cursor of ``list_runs``, and a
run whole with everything that belongs to it (``RunSnapshot``). Re-exported by
``pyworkflow.storage.records``, their public home.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import CorruptRecordError
from pyworkflow.queues import DEFAULT_QUEUE
from pyworkflow.storage._hook_records import HookRecord, NewHook
from pyworkflow.storage._lease_records import StepLease
from pyworkflow.storage.streams import StreamSnapshot

__all__ = [
    "AppendResult",
    "AppendWrite",
    "EventRecord",
    "NewEvent",
    "NewRun",
    "RunCursor",
    "RunRecord",
    "RunSnapshot",
]


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


# Their public home: type paths in encoded values, reprs and pickles name it, as before the split.
for _name in __all__:
    if isinstance(globals()[_name], type):
        globals()[_name].__module__ = "pyworkflow.storage.records"
