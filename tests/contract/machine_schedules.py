"""Rules of the storage state machine for schedules: created, updated and fired, racing.

A mixin of ``test_state_machine.StorageMachine``, as ``machine_hooks.py`` is. Schedules are
created from a small pool of ids (so ids clash, and deleted ones are replaced), updated with the
version the model holds or a stale one, and fired for slots from a small pool (so a slot is
fired again and finds its run), sometimes stale. A fire's runs join the machine's run model, so
its invariants check them like any run. After every step the stored schedules are compared
with the model's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from pyworkflow.events import ScheduleStatus
from pyworkflow.exceptions import ScheduleExistsError
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import NewRun, ScheduleFire, ScheduleRecord

_T = TypeVar("_T")

IDS = st.sampled_from(["s1", "s2"])
STATUSES = st.sampled_from(list(ScheduleStatus))


class ScheduleRules:
    """Schedule rules and their invariant; the machine provides the attributes below."""

    storage: Storage
    now: float
    model: dict[str, Any]
    keys: dict[str, str]
    schedules: dict[str, ScheduleRecord]

    def new_model_run(self, new: NewRun) -> None:
        """Add a run a fire created to the machine's run model (the machine's method)."""
        raise NotImplementedError

    if TYPE_CHECKING:

        def call(self, coro: Coroutine[Any, Any, _T]) -> _T:
            """Run ``coro`` on the machine's event loop."""

    def _record(self, schedule_id: str, workflow: str, status: ScheduleStatus) -> ScheduleRecord:
        due = None if status is not ScheduleStatus.ACTIVE else self.now + 5
        return ScheduleRecord(
            schedule_id=schedule_id,
            workflow_name=workflow,
            spec={"interval": 60.0, "timezone": "UTC"},
            args={"args": [], "kwargs": {}},
            overlap_policy="skip",
            catchup_window=None,
            status=status,
            next_slot_at=due,
            due_at=due,
            buffered=(),
            total_runs=0,
            skipped_runs=0,
            last_slot_at=None,
            last_run_id=None,
            created_at=self.now,
            updated_at=self.now,
        )

    @rule(schedule_id=IDS, workflow=st.sampled_from(["a", "b"]), status=STATUSES)
    def create_schedule(self, schedule_id: str, workflow: str, status: ScheduleStatus) -> None:
        record = self._record(schedule_id, workflow, status)
        held = self.schedules.get(schedule_id)
        if held is not None and held.status is not ScheduleStatus.DELETED:
            with pytest.raises(ScheduleExistsError):
                self.call(self.storage.create_schedule(record))
            return
        stored = self.call(self.storage.create_schedule(record))
        assert stored == dataclasses.replace(record, version=0)
        self.schedules[schedule_id] = stored

    @rule(schedule_id=IDS, status=STATUSES, stale=st.booleans(), skipped=st.integers(0, 3))
    def update_schedule(
        self, schedule_id: str, status: ScheduleStatus, stale: bool, skipped: int
    ) -> None:
        held = self.schedules.get(schedule_id)
        if held is None:
            return
        read = dataclasses.replace(held, version=held.version - 1) if stale else held
        new = dataclasses.replace(read, status=status, skipped_runs=skipped, updated_at=self.now)
        written = self.call(self.storage.update_schedule(new))
        if stale:
            assert written is None
            return
        assert written == dataclasses.replace(new, version=held.version + 1)
        self.schedules[schedule_id] = written

    @rule(
        schedule_id=IDS,
        slots=st.lists(st.sampled_from([1.0, 2.0, 3.0]), max_size=2, unique=True),
        stale=st.booleans(),
    )
    def fire(self, schedule_id: str, slots: list[float], stale: bool) -> None:
        held = self.schedules.get(schedule_id)
        if held is None:
            return
        read = dataclasses.replace(held, version=held.version - 1) if stale else held
        runs = [
            NewRun(
                run_id=f"run-{len(self.model):03}-{i}",
                workflow_name=held.workflow_name,
                args={"slot": slot},
                started_payload={"v": 1, "slot": slot},
                now=self.now,
                idempotency_key=f"schedule:{schedule_id}:{slot}",
                schedule_id=schedule_id,
                schedule_slot_at=slot,
            )
            for i, slot in enumerate(slots)
        ]
        state = dataclasses.replace(
            read,
            next_slot_at=self.now + 60,
            due_at=self.now + 60,
            skipped_runs=read.skipped_runs + 1,
            last_slot_at=slots[-1] if slots else read.last_slot_at,
            updated_at=self.now,
            spec={"changed": "by the fire, but a fire never writes the spec"},
        )
        ids = self.call(self.storage.fire_schedule(ScheduleFire(state, runs=runs, now=self.now)))
        if stale:
            assert ids is None
            return
        expected, created = [], 0
        for new in runs:
            taken = self.keys.get(new.idempotency_key or "")
            if taken is not None:
                expected.append(taken)
                continue
            expected.append(new.run_id)
            created += 1
            self.new_model_run(new)
        assert ids == expected
        self.schedules[schedule_id] = dataclasses.replace(
            held,
            next_slot_at=state.next_slot_at,
            due_at=state.due_at,
            skipped_runs=state.skipped_runs,
            last_slot_at=state.last_slot_at,
            updated_at=self.now,
            total_runs=held.total_runs + created,
            last_run_id=expected[-1] if expected else held.last_run_id,
            version=held.version + 1,
        )

    @invariant()
    def schedules_agree_with_model(self) -> None:
        for schedule_id, expected in self.schedules.items():
            assert self.call(self.storage.get_schedule(schedule_id)) == expected
        live = sorted(
            s for s, r in self.schedules.items() if r.status is not ScheduleStatus.DELETED
        )
        assert [s.schedule_id for s in self.call(self.storage.list_schedules())] == live
        due = [r.due_at for r in self.schedules.values() if r.due_at is not None]
        assert self.call(self.storage.next_schedule_due_at()) == min(due, default=None)
