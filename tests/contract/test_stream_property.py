"""A hypothesis property of stream runs on every backend: storage agrees with a plain model.

Random orders of emits (three signal types) and batch takes whose delivered subscriptions
decide at random to wait, suspend for one type, terminate or cancel. The model, written here
without the storage's code: a pending subscription gets its start; a waiting one its first
signal of its types after its cursor; a suspended one its first of its resume types, the
others passed over; an ended one nothing; once every one has ended (after a take), the stream
run has completed and refuses emits. After each take, storage's deliveries and statuses
must be the model's, and no subscription ever gets a signal twice or out of order. Each
example is a stream run of its own in one storage, so they also show that stream runs do not
see each other.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import StorageFactory
from pyworkflow.events import StreamStepStatus as S
from pyworkflow.exceptions import StreamRunEndedError
from pyworkflow.storage.streams import (
    NewSignal,
    StreamStore,
    SubscriptionOutcome,
    SubscriptionSpec,
)

SPECS = [
    SubscriptionSpec("s1", "st", ("a", "b")),
    SubscriptionSpec("s2", "st", ("b", "c")),
    SubscriptionSpec("s3", "st", ("c",)),
]
CHOICES = ["wait", "suspend:a", "suspend:c", "terminate", "cancel"]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("emit"), st.sampled_from("abc")),
        st.tuples(st.just("take"), st.lists(st.sampled_from(CHOICES), min_size=3, max_size=3)),
    ),
    max_size=30,
)


@dataclass
class Sub:
    types: tuple[str, ...]
    status: S = S.PENDING
    cursor: int = 0
    resume: tuple[str, ...] | None = None
    got: list[int | None] = field(default_factory=list)


def model_batch(subs: dict[str, Sub], signals: list[str]) -> dict[str, int | None]:
    """What the model delivers in one batch (and moves its cursors)."""
    out: dict[str, int | None] = {}
    for name, sub in sorted(subs.items()):
        if sub.status is S.PENDING:
            out[name] = None
            sub.status = S.RUNNING
            continue
        if sub.status not in (S.WAITING, S.SUSPENDED):
            continue
        wanted = sub.types if sub.status is S.WAITING else (sub.resume or sub.types)
        later = range(sub.cursor + 1, len(signals) + 1)
        hit = next((seq for seq in later if signals[seq - 1] in wanted), None)
        if hit is None:
            sub.cursor = len(signals)
        else:
            out[name], sub.cursor, sub.status = hit, hit, S.RUNNING
    return out


def decision(name: str, choice: str) -> SubscriptionOutcome:
    if choice.startswith("suspend"):
        return SubscriptionOutcome(name, S.SUSPENDED, "why", (choice[-1],))
    status = {"wait": S.WAITING, "terminate": S.TERMINATED, "cancel": S.CANCELLED}[choice]
    return SubscriptionOutcome(name, status, "why" if status is S.CANCELLED else None)


async def scenario(store: StreamStore, sid: str, steps: list[tuple[str, object]]) -> None:
    await store.open_stream_run(sid, stream="st", run_id=f"r-{sid}", subscriptions=SPECS, now=1.0)
    subs = {s.step_name: Sub(s.signal_types) for s in SPECS}
    signals: list[str] = []
    running: list[str] = []
    batch = 0
    for op, arg in steps:
        if op == "emit":
            assert isinstance(arg, str)
            new = NewSignal(sid, "st", arg, {"t": arg}, "x", 2.0)
            if batch and all(sub.status.is_terminal for sub in subs.values()):
                with pytest.raises(StreamRunEndedError):  # completed: it takes no more
                    await store.emit_signal(new)
                continue
            stored = await store.emit_signal(new)
            signals.append(arg)
            assert stored.seq == len(signals)
            continue
        assert isinstance(arg, list)
        outcomes = [decision(name, arg[i]) for i, name in enumerate(sorted(running))]
        for outcome in outcomes:
            sub = subs[outcome.step_name]
            sub.status, sub.resume = outcome.status, outcome.resume_signals
        batch += 1
        taken = await store.take_stream_batch(sid, batch=batch, outcomes=outcomes, now=3.0)
        expected = model_batch(subs, signals)
        assert {d.step_name: d.seq for d, _ in taken.deliveries} == expected
        for name, seq in expected.items():
            subs[name].got.append(seq)
        assert {s.step_name: s.status for s in taken.subscriptions} == {
            n: s.status for n, s in subs.items()
        }
        running = sorted(expected)
    for sub in subs.values():
        seqs = [s for s in sub.got if s is not None]
        assert seqs == sorted(set(seqs))  # never twice, never out of order
    assert [s.seq for s in await store.list_signals(sid)] == list(range(1, len(signals) + 1))


def test_stream_deliveries_agree_with_a_plain_model(make_storage: StorageFactory) -> None:
    loop = asyncio.new_event_loop()
    storage = make_storage()
    loop.run_until_complete(storage.open())
    assert isinstance(storage, StreamStore)
    store: StreamStore = storage
    ids = itertools.count()

    @settings(max_examples=40, deadline=None)
    @given(steps=ops)
    def check(steps: list[tuple[str, object]]) -> None:
        loop.run_until_complete(scenario(store, f"p{next(ids)}", steps))

    try:
        check()
    finally:
        loop.run_until_complete(storage.close())
        loop.close()
