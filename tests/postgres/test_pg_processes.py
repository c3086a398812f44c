"""Real concurrency on PostgreSQL: separate processes, each with a PostgresStorage of its own.

The processes are pg_agent.py scripts started once for this module; a test writes a command to
several of them back to back, so that they act at the same moment on one schema, then reads
their replies. What each test proves is the DESIGN §2.3 rule it names: one writer per run, a
lapsed lease taken over and its old holder refused, no run claimed twice, one run per
idempotency key.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from postgres_server import PostgresServer
from pyworkflow.storage.postgres import PostgresStorage
from pyworkflow.storage.records import NewRun

pytestmark = pytest.mark.slow

AGENT = Path(__file__).with_name("pg_agent.py")

T = TypeVar("T")


class Agent:
    """One pg_agent.py process: ``send`` a command, read its ``reply`` later, or ``call``."""

    def __init__(self, name: str, log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(AGENT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"agent {self.name} died:\n{self.log.read_text()}"
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, **command: Any) -> Any:
        self.send(**command)
        reply = self.reply()
        assert "ok" in reply, f"agent {self.name}: {reply}"
        return reply["ok"]

    def stop(self) -> None:
        """End of input: the agent closes its storages and exits (killed if it does not)."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Agent]]:
    """Four agent processes for the module; each is stopped (only they) at teardown."""
    logs = tmp_path_factory.mktemp("agents")
    started = [Agent(name, logs / f"{name}.log") for name in "abcd"]
    yield started
    for agent in started:
        agent.stop()


@pytest.fixture
def url(postgres_server: PostgresServer, agents: list[Agent]) -> str:
    """A fresh schema, already opened by every agent (so that a command starts at once)."""
    fresh = postgres_server.fresh_url()
    on_postgres(fresh, lambda storage: storage.get_run("none"))  # create the schema once
    for agent in agents:
        agent.call(op="open", url=fresh)
    return fresh


def on_postgres(url: str, use: Callable[[PostgresStorage], Awaitable[T]]) -> T:
    """``await use(storage)`` on a storage of this (the test's) process, on a loop of its own."""

    async def go() -> T:
        storage = PostgresStorage(url)
        await storage.open()
        try:
            return await use(storage)
        finally:
            await storage.close()

    return asyncio.run(go())


def at_once(agents: list[Agent], commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send each agent its command, back to back in a random order, then read every reply."""
    order = list(zip(agents, commands, strict=True))
    random.shuffle(order)
    for agent, command in order:
        agent.send(**command)
    return [agent.reply() for agent in agents]


def test_two_processes_appending_the_same_seq_exactly_one_wins_each_round(
    agents: list[Agent], url: str
) -> None:
    rounds = 150
    now = time.time()
    first = NewRun("r1", "wf", [], {"v": 1}, now=now, lease_owner="w", lease_expires_at=now + 600)
    on_postgres(url, lambda storage: storage.create_run(first))
    pair = agents[:2]
    winners: list[str] = []
    for n in range(rounds):
        expected = 1 + n
        replies = at_once(
            pair,
            [
                {"op": "append", "url": url, "run_id": "r1", "owner": "w",
                 "expected_seq": expected, "tag": f"{agent.name}{n}", "lease_seconds": 600}
                for agent in pair
            ],
        )  # fmt: skip
        won = [a.name for a, r in zip(pair, replies, strict=True) if r.get("ok") == expected + 1]
        lost = [r for r in replies if r.get("error") == "ConcurrencyConflictError"]
        assert (len(won), len(lost)) == (1, 1), f"round {n}: {replies}"
        assert "stale seq" in lost[0]["message"]
        winners.append(won[0])

    events = on_postgres(url, lambda storage: storage.load_events("r1"))
    assert [e.seq for e in events] == list(range(1, rounds + 2)), "a gap or a duplicate"
    assert [e.payload["by"] for e in events[1:]] == [f"{w}{n}" for n, w in enumerate(winners)]
    assert set(winners) == {"a", "b"}, "one process always won: they did not race"


def test_a_lapsed_lease_is_taken_over_by_another_process_and_its_holder_refused(
    agents: list[Agent], url: str
) -> None:
    lease = 0.8
    on_postgres(url, lambda storage: storage.create_run(NewRun("r1", "wf", [], {}, time.time())))
    holder, successor = agents[:2]
    claim = {"op": "claim", "url": url, "run_ids": ["r1"], "lease_seconds": lease}
    assert holder.call(**claim, owner="A") == [["r1", "A", 0]]
    append = {"op": "append", "url": url, "run_id": "r1", "lease_seconds": lease}
    assert holder.call(**append, owner="A", expected_seq=1, tag="A1") == 2
    taken_at = time.monotonic()  # the append renewed the lease
    assert successor.call(**claim, owner="B") == [], "claimed while the lease was held"

    time.sleep(max(0.0, taken_at + lease + 0.1 - time.monotonic()))  # A stalls; its lease lapses
    assert successor.call(**claim, owner="B") == [["r1", "B", 1]]
    renew = {"op": "renew", "url": url, "run_ids": ["r1"], "lease_seconds": lease}
    assert holder.call(**renew, owner="A") == []
    holder.send(**append, owner="A", expected_seq=2, tag="A2")
    late = holder.reply()
    assert late.get("error") == "ConcurrencyConflictError", late
    assert "held by 'B'" in late["message"]
    assert successor.call(**append, owner="B", expected_seq=2, tag="B2") == 3

    async def look(storage: PostgresStorage) -> tuple[Any, list[Any]]:
        return await storage.get_run("r1"), await storage.load_events("r1")

    record, events = on_postgres(url, look)
    assert [(e.seq, e.payload.get("by")) for e in events] == [(1, None), (2, "A1"), (3, "B2")]
    assert (record.lease_owner, record.recovery_count, record.last_seq) == ("B", 1, 3)


def test_two_processes_draining_one_queue_never_claim_the_same_run(
    agents: list[Agent], url: str
) -> None:
    run_ids = [f"run-{i:03}" for i in range(500)]
    now = time.time() - 60  # all due

    async def fill(storage: PostgresStorage) -> None:
        for chunk in range(0, len(run_ids), 50):
            await asyncio.gather(
                *(
                    storage.create_run(NewRun(run_id, "wf", [], {}, now=now + i / 1000))
                    for i, run_id in enumerate(run_ids[chunk : chunk + 50], chunk)
                )
            )

    on_postgres(url, fill)
    pair = agents[:2]
    drain = {"op": "drain", "url": url, "batch": 5, "pause": 0.01}
    replies = at_once(pair, [{**drain, "owner": agent.name} for agent in pair])
    first, second = (reply["ok"] for reply in replies)

    assert first, "the first process claimed nothing: the race was not exercised"
    assert second, "the second process claimed nothing: the race was not exercised"
    assert not set(first) & set(second), "a run was claimed by both processes"
    assert len(first) == len(set(first)), "a process claimed a run twice"
    assert len(second) == len(set(second)), "a process claimed a run twice"
    assert sorted(first + second) == run_ids
    records = on_postgres(url, lambda storage: storage.list_runs(limit=1000))
    owners = {r.run_id: r.lease_owner for r in records}
    assert owners == dict.fromkeys(first, "a") | dict.fromkeys(second, "b")
    assert all(r.recovery_count == 0 for r in records)


def test_fifty_concurrent_starts_with_one_key_from_four_processes_make_one_run(
    agents: list[Agent], url: str
) -> None:
    calls = [[f"run-{n:02}", "wf", "order-42"] for n in range(50)]
    replies = at_once(
        agents,
        [{"op": "start", "url": url, "runs": calls[i::4]} for i in range(len(agents))],
    )
    outcomes = [outcome for reply in replies for outcome in reply["ok"]]
    assert len(outcomes) == 50
    assert all(isinstance(o, list) for o in outcomes), outcomes
    assert sum(created for _, created in outcomes) == 1
    (winner,) = {run_id for run_id, _ in outcomes}

    async def look(storage: PostgresStorage) -> tuple[list[Any], list[Any]]:
        return await storage.list_runs(), await storage.load_events(winner)

    listed, events = on_postgres(url, look)
    assert [(r.run_id, r.idempotency_key) for r in listed] == [(winner, "order-42")]
    assert [(e.seq, e.payload["by"]) for e in events] == [(1, winner)]


def test_concurrent_starts_of_two_workflows_with_one_key_make_one_run(
    agents: list[Agent], url: str
) -> None:
    # Half the callers start workflow "pay", half "ship", all with the same key, at once.
    calls = [[f"run-{n:02}", "pay" if n % 2 else "ship", "k"] for n in range(40)]
    replies = at_once(
        agents,
        [{"op": "start", "url": url, "runs": calls[i::4]} for i in range(len(agents))],
    )
    outcomes = dict(
        zip(
            [tuple(call) for i in range(len(agents)) for call in calls[i::4]],
            [outcome for reply in replies for outcome in reply["ok"]],
            strict=True,
        )
    )
    listed = on_postgres(url, lambda storage: storage.list_runs())
    assert len(listed) == 1
    winner = listed[0]
    for (run_id, workflow, _), outcome in outcomes.items():
        if workflow == winner.workflow_name:
            assert outcome == [winner.run_id, run_id == winner.run_id], (run_id, outcome)
        else:
            assert outcome["error"] == "IdempotencyConflictError", (run_id, outcome)
            assert repr(winner.workflow_name) in outcome["message"]
            assert repr(workflow) in outcome["message"]
