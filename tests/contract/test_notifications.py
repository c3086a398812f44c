"""The optional ChangeNotifier protocol: what a subscriber hears of another storage's writes.

Runs for every backend whose storage implements ``ChangeNotifier`` (conftest.py), with two
storage objects on one database: the listener subscribes, the writer writes, as a worker and a
client process would. Notifications of one listener arrive in commit order, so a test that
checks that something was *not* heard ends with a marker write and waits for the marker: what
was not heard before it never will be.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from storage_calls import (
    T0,
    claim,
    end,
    new_hook,
    new_run,
    start,
    step_events,
    token_hash,
    turn,
    waiting_on,
)

from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import ConcurrencyConflictError, HookAlreadyReceivedError
from pyworkflow.storage.memory import MemoryStorage
from pyworkflow.storage.postgres import PostgresStorage
from pyworkflow.storage.protocol import ChangeNotifier, Storage
from pyworkflow.storage.records import NewEvent, StepOffer
from pyworkflow.storage.sqlite import SQLiteStorage

Pair = tuple[ChangeNotifier, Storage]

_markers = itertools.count(1)


class Ears:
    """A subscriber that remembers what it heard, and on which event loop."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str]] = []
        self.loops: set[asyncio.AbstractEventLoop] = set()
        self._news = asyncio.Event()

    def __call__(self, kind: str, run_id: str) -> None:
        self.heard.append((kind, run_id))
        self.loops.add(asyncio.get_running_loop())
        self._news.set()

    async def hear(self, kind: str, run_id: str, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while (kind, run_id) not in self.heard:
                self._news.clear()
                await self._news.wait()

    async def heard_by_now(self, writer: Storage) -> list[tuple[str, str]]:
        """Everything heard until a marker written now arrives (the marker left out)."""
        marker = f"marker-{next(_markers)}"
        await start(writer, marker, workflow="marker")
        await self.hear("runnable", marker)
        return [item for item in self.heard if not item[1].startswith("marker-")]


async def tuned_in(listener: ChangeNotifier, writer: Storage, *ears: Ears) -> None:
    """Subscribe ``ears`` and return once they hear the writer; then forget what they heard.

    Listening may start asynchronously, so a write made before it is not heard: write markers
    until one arrives. Earlier markers were either lost or arrived before it (commit order).
    """
    for ear in ears:
        listener.subscribe(ear)
    async with asyncio.timeout(10):
        while True:
            marker = f"marker-{next(_markers)}"
            await start(writer, marker, workflow="marker")
            try:
                await ears[0].hear("runnable", marker, within=0.2)
            except TimeoutError:
                continue
            for ear in ears:
                await ear.hear("runnable", marker)
                ear.heard.clear()
            return


def test_which_backends_push_changes() -> None:
    # Pins the parametrisation of notifier_pair (conftest.NOTIFYING is computed the same way),
    # so the tests below cannot silently stop running: PostgreSQL notifies, the others are polled.
    assert issubclass(PostgresStorage, ChangeNotifier)
    assert not issubclass(MemoryStorage, ChangeNotifier)
    assert not issubclass(SQLiteStorage, ChangeNotifier)


async def test_runs_made_due_by_another_storage_wake_subscribers(notifier_pair: Pair) -> None:
    listener, writer = notifier_pair
    ears = Ears()
    await tuned_in(listener, writer, ears)

    await start(writer, "created")
    await ears.hear("runnable", "created")

    await start(writer, "cancelled", owner="w1", lease_expires_at=T0 + 30)
    assert await writer.request_cancel("cancelled", now=T0 + 1, reason="stop")
    await ears.hear("runnable", "cancelled")

    await start(writer, "released")
    await claim(writer, "released", owner="w1")
    await writer.release_runs(owner="w1", run_ids=["released"], now=T0 + 2)
    await ears.hear("runnable", "released")

    await start(writer, "reopened")
    await claim(writer, "reopened", owner="w1")
    await turn(writer, "reopened", "w1", status=RunStatus.FAILED, error={"type": "E"})
    ears.heard.clear()
    await writer.reopen_failed_run("reopened", now=T0 + 3, payload={"v": 1})
    await ears.hear("runnable", "reopened")

    assert ears.loops == {asyncio.get_running_loop()}, "callbacks run on the subscriber's loop"


@pytest.mark.parametrize(
    "status",
    [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.CONTINUED_AS_NEW],
)
async def test_a_run_reaching_a_terminal_status_is_heard_as_ended(
    notifier_pair: Pair, status: RunStatus
) -> None:
    listener, writer = notifier_pair
    await start(writer, "r1", owner="w1", lease_expires_at=T0 + 30)
    ears = Ears()
    await tuned_in(listener, writer, ears)
    await turn(writer, "r1", "w1", events=step_events(1), status=RunStatus.RUNNING)
    assert ("ended", "r1") not in await ears.heard_by_now(writer)

    await turn(writer, "r1", "w1", status=status, result={"ok": True})
    await ears.hear("ended", "r1")


async def test_a_refused_append_is_not_heard(notifier_pair: Pair) -> None:
    listener, writer = notifier_pair
    await start(writer, "r1", owner="w1", lease_expires_at=T0 + 30)
    ears = Ears()
    await tuned_in(listener, writer, ears)
    ended = [NewEvent(EventType.WORKFLOW_COMPLETED, {"v": 1})]
    with pytest.raises(ConcurrencyConflictError):  # not the lease holder
        await turn(writer, "r1", "w2", events=ended, status=RunStatus.COMPLETED)
    with pytest.raises(ConcurrencyConflictError):  # a stale seq
        await turn(writer, "r1", "w1", expected_seq=0, events=ended, status=RunStatus.COMPLETED)
    assert await ears.heard_by_now(writer) == []
    assert (await writer.load_events("r1"))[-1].type is EventType.WORKFLOW_STARTED


async def test_an_unsubscribed_callback_hears_nothing_more(notifier_pair: Pair) -> None:
    listener, writer = notifier_pair
    kept, dropped = Ears(), Ears()
    await tuned_in(listener, writer, kept, dropped)
    listener.unsubscribe(dropped)
    listener.unsubscribe(Ears())  # never subscribed: ignored
    await writer.create_run(new_run("r1"))
    assert await kept.heard_by_now(writer) == [("runnable", "r1")]
    assert dropped.heard == []


async def test_a_delivered_hook_wakes_its_run_and_a_refused_one_is_not_heard(
    notifier_pair: Pair,
) -> None:
    listener, writer = notifier_pair
    await waiting_on(writer, "r1", new_hook("t1"))
    ears = Ears()
    await tuned_in(listener, writer, ears)

    await writer.deliver_hook(token_hash("t1"), {"ok": True}, now=T0 + 1)
    await ears.hear("runnable", "r1")
    ears.heard.clear()

    with pytest.raises(HookAlreadyReceivedError):
        await writer.deliver_hook(token_hash("t1"), {"again": True}, now=T0 + 2)
    assert await ears.heard_by_now(writer) == []


async def test_a_runs_end_wakes_the_relatives_it_touched(notifier_pair: Pair) -> None:
    listener, writer = notifier_pair
    await start(writer, "p")
    await start(writer, "c1", parent="p", policy="cancel")
    await start(writer, "gc-cancel", parent="c1", policy="cancel")
    await start(writer, "gc-abandon", parent="c1", policy="abandon")
    await claim(writer, "c1")
    ears = Ears()
    await tuned_in(listener, writer, ears)

    await end(writer, "c1", now=T0 + 1)

    await ears.hear("runnable", "p")
    await ears.hear("runnable", "gc-cancel")
    await ears.hear("ended", "c1")
    assert ("runnable", "gc-abandon") not in await ears.heard_by_now(writer)


async def test_a_step_offered_to_a_queue_wakes_the_workers(notifier_pair: Pair) -> None:
    listener, writer = notifier_pair
    ears = Ears()
    await tuned_in(listener, writer, ears)
    await start(writer, "offers", owner="w1", lease_expires_at=T0 + 30)  # leased: not heard
    assert await ears.heard_by_now(writer) == []

    await writer.offer_steps("offers", [StepOffer("mail#1", 1, "email")], now=T0)

    await ears.hear("runnable", "offers")
