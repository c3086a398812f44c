"""Rules of the storage state machine for what a broker-driven (Celery) executor calls.

A mixin of ``test_state_machine.StorageMachine``, kept in a file of its own so each stays short:
step leases (``acquire_step``, ``renew_step``, ``release_step``, and the offers of steps of a
queue, ``offer_steps`` and ``list_offered_steps``, checked against a plain dict of expected
rows after every step), the sweeper's ``take_due_runs`` and the claim of a task
sent for given runs (``claim_runs(due_only=False)``). The rules read and update the machine's
run model (``self.model``: run id -> ``ModelRun``) and clock as its own rules do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, invariant, rule
from storage_calls import LEASE

from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import StepLease, StepOffer

_T = TypeVar("_T")

RUNS = Bundle("runs")  # the machine's bundle of run ids (bundles are found by name)
OWNERS = st.sampled_from(["w1", "w2"])
STEPS = st.sampled_from(["s#1", "s#2"])
QUEUES = st.sampled_from(["q1", "q2"])


class DispatchRules:
    """Step-lease, take-due and sent-claim rules; the machine provides the attributes below."""

    storage: Storage
    now: float
    model: dict[str, Any]
    step_leases: dict[tuple[str, str], StepLease]  # (run id, step id) -> the expected row

    if TYPE_CHECKING:

        def call(self, coro: Coroutine[Any, Any, _T]) -> _T:
            """Run ``coro`` on the machine's event loop."""

    @rule(
        run_id=st.one_of(RUNS, st.just("ghost")),
        step_id=STEPS,
        attempt=st.integers(1, 2),
        owner=OWNERS,
    )
    def acquire_step(self, run_id: str, step_id: str, attempt: int, owner: str) -> None:
        got = self.call(
            self.storage.acquire_step(
                run_id,
                step_id,
                attempt=attempt,
                owner=owner,
                now=self.now,
                lease_expires_at=self.now + LEASE,
            )
        )
        run = self.model.get(run_id)
        row = self.step_leases.get((run_id, step_id))
        refused = run is None or run.status.is_terminal
        deliveries = 1
        if not refused and row is not None and row.attempt == attempt:
            held_live = (
                row.owner not in (None, owner)
                and row.lease_expires_at is not None
                and row.lease_expires_at > self.now
            )
            refused = held_live
            deliveries = row.deliveries + 1
        if refused:
            assert got is None
            return
        expected = StepLease(run_id, step_id, attempt, owner, self.now + LEASE, deliveries)
        if row is not None and row.attempt == attempt:  # an offer keeps its queue
            expected = dataclasses.replace(expected, queue=row.queue, offered_at=row.offered_at)
        self.step_leases[run_id, step_id] = expected
        assert got == expected

    @rule(run_id=RUNS, step_id=STEPS, owner=OWNERS, seconds=st.sampled_from([1.0, LEASE]))
    def renew_step(self, run_id: str, step_id: str, owner: str, seconds: float) -> None:
        until = self.now + seconds
        renewed = self.call(
            self.storage.renew_step(
                run_id, step_id, owner=owner, now=self.now, lease_expires_at=until
            )
        )
        row = self.step_leases.get((run_id, step_id))
        assert renewed == (row is not None and row.owner == owner)
        if row is not None and renewed:
            self.step_leases[run_id, step_id] = dataclasses.replace(row, lease_expires_at=until)

    @rule(run_id=RUNS, step_id=STEPS, owner=OWNERS)
    def release_step(self, run_id: str, step_id: str, owner: str) -> None:
        self.call(self.storage.release_step(run_id, step_id, owner=owner))
        row = self.step_leases.get((run_id, step_id))
        if row is not None and row.owner == owner:
            del self.step_leases[run_id, step_id]

    @rule(
        run_id=st.one_of(RUNS, st.just("ghost")),
        step_id=STEPS,
        attempt=st.integers(1, 2),
        queue=QUEUES,
    )
    def offer_step(self, run_id: str, step_id: str, attempt: int, queue: str) -> None:
        offer = StepOffer(step_id, attempt, queue)
        self.call(self.storage.offer_steps(run_id, [offer], now=self.now))
        run = self.model.get(run_id)
        row = self.step_leases.get((run_id, step_id))
        if run is None or run.status.is_terminal or (row is not None and row.attempt == attempt):
            return  # nothing written: no live run, or this attempt is offered or held already
        self.step_leases[run_id, step_id] = StepLease(
            run_id, step_id, attempt, None, None, 0, queue, self.now
        )

    @rule(
        queues=st.sampled_from([None, ("q1",), ("q1", "q2"), ()]),
        names=st.sampled_from([("a",), ("a", "b")]),
        limit=st.integers(1, 4),
    )
    def list_offered_steps(
        self, queues: tuple[str, ...] | None, names: tuple[str, ...], limit: int
    ) -> None:
        got = self.call(
            self.storage.list_offered_steps(
                queues=queues, workflow_names=names, now=self.now, limit=limit
            )
        )
        free = sorted(
            (
                row
                for (run_id, _), row in self.step_leases.items()
                if row.queue is not None
                and (queues is None or row.queue in queues)
                and (run := self.model.get(run_id)) is not None
                and not run.status.is_terminal
                and run.workflow_name in names
                and (row.owner is None or (row.lease_expires_at or 0.0) <= self.now)
            ),
            key=lambda row: (row.offered_at or 0.0, row.run_id, row.step_id),
        )
        assert got == free[:limit]

    @rule(
        limit=st.integers(1, 3),
        names=st.sampled_from([None, ("a",), ("b",)]),
        seconds=st.sampled_from([5.0, LEASE]),
    )
    def take_due_runs(self, limit: int, names: tuple[str, ...] | None, seconds: float) -> None:
        candidates = {
            r.run_id: r
            for r in self.model.values()
            if r.runnable(self.now) and (names is None or r.workflow_name in names)
        }
        until = self.now + seconds
        taken = self.call(
            self.storage.take_due_runs(now=self.now, until=until, limit=limit, workflow_names=names)
        )
        assert len(taken) == len(set(taken)) == min(limit, len(candidates))
        assert set(taken) <= set(candidates)
        wakes = [candidates[i].wake_at for i in taken]
        assert wakes == sorted(wakes), "earliest wake_at first"
        passed_over = [r.wake_at for i, r in candidates.items() if i not in taken]
        assert not wakes or not passed_over or max(wakes) <= min(passed_over)
        for run_id in taken:
            self.model[run_id].wake_at = until

    @rule(owner=OWNERS, run_ids=st.lists(RUNS, min_size=1, max_size=3, unique=True))
    def claim_sent_runs(self, owner: str, run_ids: list[str]) -> None:
        """A task sent for these runs claims them, due or not (``due_only=False``)."""
        expected = {
            i
            for i in run_ids
            if not (run := self.model[i]).status.is_terminal
            and run.wake_at is not None
            and (run.lease_expires_at is None or run.lease_expires_at <= self.now)
        }
        claimed = self.call(
            self.storage.claim_runs(
                owner=owner,
                now=self.now,
                lease_expires_at=self.now + LEASE,
                limit=len(run_ids),
                run_ids=run_ids,
                due_only=False,
            )
        )
        assert {r.run_id for r in claimed} == expected
        for record in claimed:
            run = self.model[record.run_id]
            if run.lease_owner is not None:
                run.recovery_count += 1
            run.lease_owner, run.lease_expires_at = owner, self.now + LEASE
            assert {k: getattr(record, k) for k in run.as_record()} == run.as_record()

    @invariant()
    def step_leases_agree_with_model(self) -> None:
        for run_id in [*self.model, "ghost"]:
            expected = sorted(
                (row for (rid, _), row in self.step_leases.items() if rid == run_id),
                key=lambda row: row.step_id,
            )
            assert self.call(self.storage.list_step_leases(run_id)) == expected
