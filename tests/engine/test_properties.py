"""Property tests: generated workflow programs survive crashes at any event (DESIGN §2.1, §2.5).

A program is a JSON list of operations that one workflow interprets: steps (some failing a few
attempts, some raising FatalError, some uncaught), ``asyncio.gather`` of steps, short sleeps and
sleeps past the horizon. It runs through the real engine pieces (``Engine`` and ``RunDriver``
over MemoryStorage or SQLiteStorage) with a fake clock that jumps instead of waiting.

A crash is simulated honestly: the storage wrapper lets the N-th append commit and then raises
``Crash`` (a BaseException, so no ``except Exception`` in the engine stops it) out of ``append``.
The driver dies without handing its lease back, like a killed process; the test throws it away,
moves the clock past the lease, and a new owner claims the run and drives it again, until the
run ends.

Properties:
* the final outcome equals that of a crash-free run of the same program;
* no step executes after its STEP_COMPLETED was logged;
* every execution of a step is an attempt the log started, and no attempt runs twice: an
  attempt a crash cut short runs again as the next one, after a logged WORKFLOW_INTERRUPTED
  (so a step that never fails runs at most 1 + the crashes that caught it in flight times);
* an attempt cut short spends none of the step's retries: the outcome is the crash-free one.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, event, given, settings

from pyworkflow import FatalError, get_step_context, sleep, step, workflow
from pyworkflow._engine.driver import RunDriver
from pyworkflow._engine.engine import Engine, EngineSettings
from pyworkflow.events import EventType
from pyworkflow.serialization import Codec
from pyworkflow.storage import MemoryStorage, SQLiteStorage
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import AppendResult, AppendWrite, NewRun

LEASE = 30.0
HORIZON = 5.0
EXEC: Counter[tuple[str, str]] = Counter()


class Crash(BaseException):
    """The process died right after an append committed."""


class FakeClock:
    """Time that jumps to each deadline at once."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        self.t = max(self.t, deadline)
        await asyncio.sleep(0)

    async def skip_to(self, deadline: float) -> bool:
        return False  # timers fire through sleep_until, as under the system clock


class CrashingStorage:
    """Delegates to a real storage; raises Crash after the appends numbered in ``crash_at``."""

    def __init__(self, inner: Storage, crash_at: set[int]) -> None:
        self._inner = inner
        self.crash_at = crash_at
        self.appends = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def append(self, write: AppendWrite) -> AppendResult:
        result = await self._inner.append(write)
        self.appends += 1
        if self.appends in self.crash_at:
            raise Crash(self.appends)
        return result


# --- the interpreted workflow --------------------------------------------------------------------


async def _attempt(op: dict[str, Any]) -> str:
    ctx = get_step_context()
    EXEC[ctx.run_id, ctx.step_id] += 1
    # Let concurrent branches interleave, and be caught in flight by a crash.
    await asyncio.sleep(0.002 * (op["id"] % 3))
    if op["fatal"]:
        raise FatalError(f"op {op['id']} is fatal")
    # Attempts a crash cut short ran again as attempts of their own: count the ones that ran
    # to an end, as the retry budget does.
    ended = ctx.attempt - ctx.interrupted
    if ended <= op["fail"]:
        raise ValueError(f"op {op['id']} failed attempt {ended}")
    return f"op{op['id']}"


@step(name="tp_work", max_retries=2, retry_delay=[0.001, 0.01])
async def work(op: dict[str, Any]) -> str:
    return await _attempt(op)


@step(name="tp_local", max_retries=2, retry_delay=0.001, force_local=True)
async def local_work(op: dict[str, Any]) -> str:
    return await _attempt(op)


async def _one(op: dict[str, Any]) -> str:
    fn = local_work if op["local"] else work
    if not op["catch"]:
        return await fn(op)
    try:
        return await fn(op)
    except FatalError as exc:
        return f"fatal: {exc}"
    except ValueError as exc:
        return f"failed: {exc}"


@workflow(name="tp_program")
async def program_workflow(ops: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for op in ops:
        if op["op"] == "sleep":
            await sleep(op["seconds"])
            out.append("slept")
        elif op["op"] == "step":
            out.append(await _one(op))
        else:
            out.append(list(await asyncio.gather(*(_one(o) for o in op["items"]))))
    return out


# --- programs ------------------------------------------------------------------------------------


@st.composite
def step_ops(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "op": "step",
        "id": 0,  # numbered below
        "fail": draw(st.sampled_from([0, 0, 0, 1, 2, 3])),  # 3 exhausts max_retries=2
        "fatal": draw(st.integers(0, 7)) == 0,
        "local": draw(st.booleans()),
        "catch": draw(st.integers(0, 9)) > 0,
    }


operations = st.one_of(
    step_ops(),
    st.builds(
        lambda items: {"op": "gather", "items": items},
        st.lists(step_ops(), min_size=1, max_size=3),
    ),
    st.sampled_from([0.0, 0.001, 2.0, 60.0]).map(lambda s: {"op": "sleep", "seconds": s}),
)


def _number(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    n = 0
    for op in ops:
        for item in op["items"] if op["op"] == "gather" else [op]:
            if item["op"] == "step":
                n += 1
                item["id"] = n
    return ops


programs = st.lists(operations, min_size=1, max_size=5).map(_number)
crash_points = st.lists(st.floats(0, 1, exclude_max=True), min_size=0, max_size=3)


# --- driving with crashes ------------------------------------------------------------------------


@dataclass
class Outcome:
    status: str
    result: Any
    error: tuple[str, str] | None
    appends: int
    crashes: int = 0
    completed_at_crash: list[set[str]] = field(default_factory=list)
    exec_at_crash: list[Counter[tuple[str, str]]] = field(default_factory=list)
    in_flight_at_crash: list[set[str]] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    run_id: str = ""


def _step_state(events: list[Any]) -> tuple[set[str], set[str]]:
    """(completed step ids, step ids started without an outcome) of a log."""
    started, ended, completed = set(), set(), set()
    for e in events:
        if e.type is EventType.STEP_STARTED:
            started.add(e.payload["step_id"])
        elif e.type is EventType.STEP_COMPLETED:
            ended.add(e.payload["step_id"])
            completed.add(e.payload["step_id"])
        elif e.type is EventType.STEP_FAILED:
            ended.add(e.payload["step_id"])
    return completed, started - ended


async def drive(storage: Storage, ops: list[dict[str, Any]], crash_at: set[int]) -> Outcome:
    await storage.open()
    try:
        return await _drive(storage, ops, crash_at)
    finally:
        await storage.close()


async def _drive(inner: Storage, ops: list[dict[str, Any]], crash_at: set[int]) -> Outcome:
    clock, codec = FakeClock(), Codec()
    storage = CrashingStorage(inner, crash_at)
    settings_ = EngineSettings(lease_seconds=LEASE, horizon_seconds=HORIZON, max_recoveries=100)
    run_id = f"run_{uuid.uuid4().hex}"
    args = codec.encode({"args": [ops], "kwargs": {}})
    record, _ = await inner.create_run(
        NewRun(
            run_id=run_id,
            workflow_name="tp_program",
            args=args,
            started_payload={
                "v": 1,
                "workflow": "tp_program",
                "args": args,
                "idempotency_key": None,
            },
            now=clock.now(),
            lease_owner="owner-0",
            lease_expires_at=clock.now() + LEASE,
        )
    )
    outcome = Outcome(status="", result=None, error=None, appends=0, run_id=run_id)
    for incarnation in range(1, 60):
        engine = Engine(
            storage=storage,
            codec=codec,
            clock=clock,  # type: ignore[arg-type]
            owner=f"owner-{incarnation - 1}",
            settings=settings_,
        )
        try:
            await RunDriver(engine, record, program_workflow).drive()
        except Crash:
            outcome.crashes += 1
            events = await inner.load_events(run_id)
            completed, in_flight = _step_state(events)
            outcome.completed_at_crash.append(completed)
            outcome.in_flight_at_crash.append(in_flight)
            outcome.exec_at_crash.append(Counter(EXEC))
            clock.t += LEASE + 1  # the dead owner's lease runs out
        current = await inner.get_run(run_id)
        assert current is not None
        if current.status.is_terminal:
            break
        if current.wake_at is not None and current.wake_at > clock.now():
            clock.t = current.wake_at
        claimed = await inner.claim_runs(
            owner=f"owner-{incarnation}",
            now=clock.now(),
            lease_expires_at=clock.now() + LEASE,
            limit=1,
            run_ids=[run_id],
        )
        assert [r.run_id for r in claimed] == [run_id], f"run not claimable: {current}"
        record = claimed[0]
    else:
        raise AssertionError("the run did not end after 60 incarnations")
    outcome.status = current.status.value
    outcome.result = current.result
    outcome.error = (
        None if current.error is None else (current.error["type"], current.error["message"])
    )
    outcome.appends = storage.appends
    outcome.events = await inner.load_events(run_id)
    return outcome


def check(make_storage: Any, ops: list[dict[str, Any]], where: list[float]) -> None:
    reference = asyncio.run(drive(make_storage(), ops, set()))
    assert reference.status in ("completed", "failed")
    # Crash points as fractions of the crash-free run's appends: how many appends a run makes
    # depends on timing (completions that arrive together share one), so it is not drawn.
    points = {1 + int(f * (reference.appends + 1)) for f in where}
    crashed = asyncio.run(drive(make_storage(), ops, points))
    event(f"crashes: {crashed.crashes}")
    event(f"outcome: {crashed.status}")

    assert (crashed.status, crashed.result, crashed.error) == (
        reference.status,
        reference.result,
        reference.error,
    )
    events = crashed.events
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    terminal = [
        e
        for e in events
        if e.type.value.startswith("workflow_")
        and e.type
        not in (
            EventType.WORKFLOW_STARTED,
            EventType.WORKFLOW_RESUMED,
            EventType.WORKFLOW_INTERRUPTED,
        )
    ]
    assert len(terminal) == 1
    assert terminal[0] is events[-1]

    run = crashed.run_id
    final = Counter({step_id: n for (run_id, step_id), n in EXEC.items() if run_id == run})
    completed, _ = _step_state(events)
    # Never twice: nothing ran again once its completion was logged.
    for at_crash, snapshot in zip(crashed.completed_at_crash, crashed.exec_at_crash, strict=True):
        for step_id in at_crash:
            assert final[step_id] == snapshot[run, step_id], (
                f"{step_id} executed after its completion was logged"
            )
    # At most once per logged attempt: a re-run after a crash is an attempt of its own.
    attempts = Counter(e.payload["step_id"] for e in events if e.type is EventType.STEP_STARTED)
    event(f"steps cut short by a crash: {any(crashed.in_flight_at_crash)}")
    for step_id in completed:
        assert 1 <= final[step_id] <= attempts[step_id], (step_id, final, attempts)
    # A step that never failed runs once, plus once per crash that caught it in flight.
    for step_id in completed:
        if attempts[step_id] == 1:
            hits = sum(step_id in in_flight for in_flight in crashed.in_flight_at_crash)
            assert final[step_id] <= 1 + hits, (step_id, final[step_id], hits)
    # Every step that ran is in the log: nothing executes before its STEP_STARTED commits.
    assert set(final) <= set(attempts)


# PW_PROPERTY_SCALE=20 runs twenty times as many examples, for a longer hunt.
SCALE = int(os.environ.get("PW_PROPERTY_SCALE", "1"))
PROPERTY_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
}


@settings(max_examples=60 * SCALE, **PROPERTY_SETTINGS)  # type: ignore[arg-type]
@given(ops=programs, where=crash_points)
def test_crashes_on_memory_storage(ops: list[dict[str, Any]], where: list[float]) -> None:
    check(MemoryStorage, ops, where)


@settings(max_examples=20 * SCALE, **PROPERTY_SETTINGS)  # type: ignore[arg-type]
@given(ops=programs, where=crash_points)
def test_crashes_on_sqlite_storage(ops: list[dict[str, Any]], where: list[float]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        numbers = iter(range(1, 10))
        path = Path(directory)
        check(
            lambda: SQLiteStorage(str(path / f"p{next(numbers)}.db"), synchronous="NORMAL"),
            ops,
            where,
        )
