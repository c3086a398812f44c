"""A hypothesis state machine: the storage under test and a plain model, driven side by side.

Rules create runs (with idempotency keys from a small pool), append (sometimes stale, sometimes
as the wrong owner), claim, renew, release, cancel, reopen and move the clock; the rules that
suspend a run on a hook, deliver and expire hooks are in ``machine_hooks.py``, those of a
broker-driven executor (step leases, taking due runs, claiming sent runs) in
``machine_dispatch.py``, and those of schedules (created, updated, fired; their runs join the
model) in ``machine_schedules.py``. After every step the invariants compare
every run, event, hook and step lease and the listings with the model. Runs against every
backend of conftest.py. State machines are sync, so each machine instance owns a private event
loop and a fresh storage built on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from machine_dispatch import DispatchRules
from machine_hooks import HookRules
from machine_schedules import ScheduleRules

from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import (
    ConcurrencyConflictError,
    IdempotencyConflictError,
    InvalidRunStateError,
    RunNotFoundError,
)
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import (
    AppendWrite,
    HookRecord,
    NewEvent,
    NewRun,
    RunRecord,
    ScheduleRecord,
    StepLease,
)

T0 = 1_700_000_000.0
LEASE = 30.0
OWNERS = st.sampled_from(["w1", "w2"])

_T = TypeVar("_T")
StorageFactory = Callable[[], Storage]


@dataclass
class ModelRun:
    """What the model knows of a run: the fields the machine checks."""

    run_id: str
    workflow_name: str
    idempotency_key: str | None
    created_at: float
    status: RunStatus = RunStatus.PENDING
    result: Any = None
    error: dict[str, Any] | None = None
    completed_at: float | None = None
    wake_at: float | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    recovery_count: int = 0
    last_seq: int = 1
    signal_seq: int = 0
    cancel_requested: bool = False
    cancel_reason: str | None = None
    events: list[tuple[int, EventType, dict[str, Any]]] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        fields = dict(vars(self))
        del fields["events"]
        return fields

    def runnable(self, now: float) -> bool:
        return (
            not self.status.is_terminal
            and self.wake_at is not None
            and self.wake_at <= now
            and (self.lease_expires_at is None or self.lease_expires_at <= now)
        )


def observed(record: RunRecord) -> dict[str, Any]:
    """The fields of a stored record that the model tracks."""
    return {
        name: getattr(record, name) for name in ModelRun.__dataclass_fields__ if name != "events"
    }


OUTCOMES = ["keep", "timer", "signal", "complete", "fail", "cancel"]


class StorageMachine(ScheduleRules, HookRules, DispatchRules, RuleBasedStateMachine):
    """Drives one fresh storage and the model with the same calls."""

    factory: ClassVar[StorageFactory]
    runs = Bundle("runs")
    hooks = Bundle("hooks")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.storage: Storage = self.factory()
        self.call(self.storage.open())
        self.now = T0
        self.model: dict[str, ModelRun] = {}
        self.keys: dict[str, str] = {}
        self.hooks: dict[str, HookRecord] = {}  # token -> the hook as the model expects it
        self.step_leases: dict[tuple[str, str], StepLease] = {}
        self.schedules: dict[str, ScheduleRecord] = {}

    def call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return self.loop.run_until_complete(coro)

    def new_model_run(self, new: NewRun) -> None:
        """A run that a schedule's fire created: pending, unleased, due at once."""
        run = ModelRun(new.run_id, new.workflow_name, new.idempotency_key, created_at=new.now)
        run.wake_at = new.now
        run.events.append((1, EventType.WORKFLOW_STARTED, new.started_payload))
        self.model[new.run_id] = run
        if new.idempotency_key is not None:
            self.keys[new.idempotency_key] = new.run_id

    def teardown(self) -> None:
        try:
            self.call(self.storage.close())
        finally:
            self.loop.close()

    # --- rules ---------------------------------------------------------------------------------

    @rule(
        target=runs,
        workflow=st.sampled_from(["a", "b"]),
        key=st.sampled_from([None, "k1", "k2", "k3"]),
        tag=st.text(max_size=4),
        starter=st.sampled_from([None, None, "w1", "w2"]),
    )
    def create_run(self, workflow: str, key: str | None, tag: str, starter: str | None) -> Any:
        run_id = f"run-{len(self.model):03}"
        payload = {"v": 1, "tag": tag, "args": [workflow]}
        new = NewRun(
            run_id=run_id,
            workflow_name=workflow,
            args={"tag": tag},
            started_payload=payload,
            now=self.now,
            idempotency_key=key,
            lease_owner=starter,
            lease_expires_at=None if starter is None else self.now + LEASE,
        )
        existing = self.model.get(self.keys[key]) if key in self.keys else None
        if existing is not None and existing.workflow_name != workflow:
            with pytest.raises(IdempotencyConflictError):
                self.call(self.storage.create_run(new))
            return multiple()
        record, created = self.call(self.storage.create_run(new))
        if existing is not None:
            assert not created
            assert observed(record) == existing.as_record()
            return multiple()
        assert created
        run = ModelRun(run_id, workflow, key, created_at=self.now, wake_at=self.now)
        if starter is not None:  # chosen semantics: due (for a recovery) when the lease lapses
            run.lease_owner = starter
            run.lease_expires_at = run.wake_at = self.now + LEASE
        run.events.append((1, EventType.WORKFLOW_STARTED, payload))
        self.model[run_id] = run
        if key is not None:
            self.keys[key] = run_id
        assert observed(record) == run.as_record()
        return run_id

    @rule(
        run_id=runs,
        owner=OWNERS,
        seq_delta=st.sampled_from([0, 0, 0, -1, 1]),
        texts=st.lists(st.text(max_size=4), max_size=3),
        outcome=st.sampled_from(OUTCOMES),
        seen_all=st.booleans(),
        progressed=st.booleans(),
    )
    def append(
        self,
        run_id: str,
        owner: str,
        seq_delta: int,
        texts: list[str],
        outcome: str,
        seen_all: bool,
        progressed: bool,
    ) -> None:
        run = self.model[run_id]
        now = self.now
        events = [
            NewEvent(EventType.STEP_COMPLETED, {"v": 1, "s": t, "i": i})
            for i, t in enumerate(texts)
        ]
        signals_seen = run.signal_seq if seen_all else max(0, run.signal_seq - 1)
        status, wake_at, lease = {
            "keep": (RunStatus.RUNNING, now + LEASE, now + LEASE),
            "timer": (RunStatus.SUSPENDED, now + 5, None),
            "signal": (RunStatus.SUSPENDED, None, None),
            "complete": (RunStatus.COMPLETED, None, None),
            "fail": (RunStatus.FAILED, None, None),
            "cancel": (RunStatus.CANCELLED, None, None),
        }[outcome]
        result = {"done": texts} if outcome == "complete" else None
        error = {"type": "E", "message": "boom"} if outcome == "fail" else None
        write = AppendWrite(
            run_id=run_id,
            owner=owner,
            expected_seq=run.last_seq + seq_delta,
            events=events,
            now=now,
            status=status,
            wake_at=wake_at,
            lease_expires_at=lease,
            result=result,
            error=error,
            progressed=progressed,
            signals_seen=signals_seen,
        )
        if run.lease_owner != owner or seq_delta != 0:
            with pytest.raises(ConcurrencyConflictError):
                self.call(self.storage.append(write))
            return
        appended = self.call(self.storage.append(write))

        for event in events:
            run.last_seq += 1
            run.events.append((run.last_seq, event.type, event.payload))
        run.status = status
        run.result = result if result is not None else run.result
        run.error = error if error is not None else run.error
        run.wake_at, run.lease_expires_at = wake_at, lease
        if status.is_terminal:
            run.wake_at, run.lease_owner, run.lease_expires_at = None, None, None
            run.completed_at = now
        elif lease is None:
            run.lease_owner = None
            if run.signal_seq > signals_seen:
                run.wake_at = now
        if progressed:
            run.recovery_count = 0
        assert (appended.last_seq, appended.signal_seq, appended.cancel_requested) == (
            run.last_seq,
            run.signal_seq,
            run.cancel_requested,
        )

    @rule(
        owner=OWNERS,
        limit=st.integers(1, 3),
        names=st.sampled_from([None, ("a",), ("b",), ("a", "b")]),
    )
    def claim(self, owner: str, limit: int, names: tuple[str, ...] | None) -> None:
        candidates = {
            r.run_id: r
            for r in self.model.values()
            if r.runnable(self.now) and (names is None or r.workflow_name in names)
        }
        claimed = self.call(
            self.storage.claim_runs(
                owner=owner,
                now=self.now,
                lease_expires_at=self.now + LEASE,
                limit=limit,
                workflow_names=names,
            )
        )
        ids = [r.run_id for r in claimed]
        assert len(ids) == len(set(ids)) == min(limit, len(candidates))
        assert set(ids) <= set(candidates)
        wakes = [candidates[i].wake_at or 0.0 for i in ids]
        assert wakes == sorted(wakes), "earliest wake_at first"
        passed_over = [r.wake_at or 0.0 for i, r in candidates.items() if i not in ids]
        assert not wakes or not passed_over or max(wakes) <= min(passed_over)
        for record in claimed:
            run = self.model[record.run_id]
            if run.lease_owner is not None:
                run.recovery_count += 1
            run.lease_owner, run.lease_expires_at = owner, self.now + LEASE
            assert observed(record) == run.as_record()

    @rule(owner=OWNERS, run_ids=st.lists(runs, max_size=3))
    def renew(self, owner: str, run_ids: list[str]) -> None:
        held = self.call(
            self.storage.renew_leases(
                owner=owner, run_ids=run_ids, now=self.now, lease_expires_at=self.now + LEASE
            )
        )
        expected = {i for i in run_ids if self.model[i].lease_owner == owner}
        assert held == expected
        for run_id in expected:
            self.model[run_id].lease_expires_at = self.now + LEASE

    @rule(owner=OWNERS, run_ids=st.lists(runs, max_size=3))
    def release(self, owner: str, run_ids: list[str]) -> None:
        self.call(self.storage.release_runs(owner=owner, run_ids=run_ids, now=self.now))
        for run_id in set(run_ids):
            run = self.model[run_id]
            if run.lease_owner == owner:
                run.lease_owner, run.lease_expires_at, run.wake_at = None, None, self.now

    @rule(run_id=st.one_of(runs, st.just("ghost")), reason=st.sampled_from(["stop", "halt"]))
    def request_cancel(self, run_id: str, reason: str) -> None:
        accepted = self.call(self.storage.request_cancel(run_id, now=self.now, reason=reason))
        run = self.model.get(run_id)
        assert accepted == (run is not None and not run.status.is_terminal)
        if run is not None and accepted:
            if not run.cancel_requested:  # a later request keeps the first one's reason
                run.cancel_requested, run.cancel_reason = True, reason
            run.signal_seq += 1
            run.wake_at = self.now

    @rule(run_id=st.one_of(runs, st.just("ghost")))
    def reopen(self, run_id: str) -> None:
        run = self.model.get(run_id)
        payload = {"v": 1, "by": "test"}
        reopen = self.storage.reopen_failed_run(run_id, now=self.now, payload=payload)
        if run is None:
            with pytest.raises(RunNotFoundError):
                self.call(reopen)
            return
        if run.status is not RunStatus.FAILED:
            with pytest.raises(InvalidRunStateError):
                self.call(reopen)
            return
        record = self.call(reopen)
        run.last_seq += 1
        run.events.append((run.last_seq, EventType.WORKFLOW_RESUMED, payload))
        run.status, run.error, run.completed_at = RunStatus.PENDING, None, None
        run.recovery_count, run.wake_at = 0, self.now
        run.lease_owner, run.lease_expires_at = None, None
        assert observed(record) == run.as_record()

    @rule(seconds=st.sampled_from([0.0, 1.0, 7.0, LEASE + 1]))
    def tick(self, seconds: float) -> None:
        self.now += seconds

    # --- invariants ----------------------------------------------------------------------------

    @invariant()
    def storage_agrees_with_model(self) -> None:
        for run_id, run in self.model.items():
            record = self.call(self.storage.get_run(run_id))
            assert record is not None
            assert observed(record) == run.as_record()
            events = self.call(self.storage.load_events(run_id))
            assert [(e.seq, e.type, e.payload) for e in events] == run.events
        listed = self.call(self.storage.list_runs(limit=1000))
        newest_first = sorted(
            self.model.values(), key=lambda r: (r.created_at, r.run_id), reverse=True
        )
        assert [r.run_id for r in listed] == [r.run_id for r in newest_first]
        assert self.call(self.storage.get_run("ghost")) is None

    @invariant()
    def next_wake_at_agrees(self) -> None:
        # Chosen semantics (next_wake_at takes no ``now``): a leased run counts from the moment
        # it can be claimed, the later of its wake_at and its lease's expiry.
        wakes = [
            r.wake_at if r.lease_expires_at is None else max(r.wake_at, r.lease_expires_at)
            for r in self.model.values()
            if not r.status.is_terminal and r.wake_at is not None
        ]
        assert self.call(self.storage.next_wake_at()) == min(wakes, default=None)


def test_storage_agrees_with_model(make_storage: StorageFactory) -> None:
    class Machine(StorageMachine):
        factory = staticmethod(make_storage)

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
