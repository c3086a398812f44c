"""kill -9 workers while signals flow to two stream runs: each signal is delivered once.

Two real ``pyworkflow worker run`` processes serve one database (SQLite file, PostgreSQL
schema); the test emits signals into two stream runs from outside (plain storage writes, as
another service would) while it kills one worker after another with SIGKILL and starts a new
one. Each execution of the stream step appends a fsync'ed line (stream run, signal seq) to a
side-effect file. At the end each stream run's deliveries hold every one of its signals to its
stream step exactly once, in seq order; the step's published result (the seqs whose executions
were logged) is exactly 1..N; an execution ran again only when a kill cut it short; and neither
stream run saw a payload of the other.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from pyworkflow.events import RunStatus
from pyworkflow.serialization import Codec
from pyworkflow.storage import Storage, storage_from_url
from pyworkflow.storage.streams import NewSignal, StreamStore
from workers import KILL_EFFECTS, WorkerProcesses, add_unleased_run

pytestmark = pytest.mark.slow

TICKS = 24
KILLS = 3
STREAMS = ("ks-a", "ks-b")

WORKFLOW_MODULE = """
import asyncio
import os
import random

from kill_effects import append_line
from pyworkflow import stream_step, stream_workflow, workflow
from pyworkflow.streams import (
    get_checkpoint, get_current_signal, run_stream_workflow, save_checkpoint, set_result,
    terminate,
)


def record(stream_run_id, seq):
    append_line(f"{stream_run_id} {seq} {os.getpid()}")


@stream_workflow(name="kstream")
async def kstream():
    pass


@stream_step(stream="kstream", signals=["tick", "stop"])
async def kcounter():
    signal = await get_current_signal()
    if signal is None:
        return
    if signal.signal_type == "stop":
        await set_result((await get_checkpoint()) or [])
        await terminate()
        return
    assert signal.payload["stream"] == signal.stream_run_id, signal
    await asyncio.sleep(random.uniform(0.0, 0.15))
    record(signal.stream_run_id, signal.sequence)
    await asyncio.sleep(random.uniform(0.0, 0.05))  # a kill here re-runs a recorded execution
    await save_checkpoint(((await get_checkpoint()) or []) + [signal.sequence])


@workflow()
async def kparent(stream_run_id):
    result = await run_stream_workflow(kstream, stream_run_id=stream_run_id)
    return result.get_result("kcounter")
"""


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    return str(request.getfixturevalue("postgres_server").fresh_url())


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Storage]:
    storage = storage_from_url(url)
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


def streams(storage: Storage) -> StreamStore:
    assert isinstance(storage, StreamStore)
    return storage


async def _start_parents(url: str) -> dict[str, str]:
    async with opened(url) as storage:
        return {sid: await add_unleased_run(storage, "kparent", sid) for sid in STREAMS}


async def _wait_opened(url: str, within: float) -> None:
    deadline = time.monotonic() + within
    async with opened(url) as storage:
        while not all([await streams(storage).get_stream_run(s) for s in STREAMS]):
            assert time.monotonic() < deadline, "the stream runs were never opened"
            await asyncio.sleep(0.1)


async def _emit(url: str, stream_run_id: str, signal_type: str, payload: object) -> None:
    async with opened(url) as storage:
        await streams(storage).emit_signal(
            NewSignal(
                stream_run_id, "kstream", signal_type, Codec().encode(payload),
                uuid.uuid4().hex, time.time(),
            )
        )  # fmt: skip


async def _outcome(url: str, parents: dict[str, str]) -> dict[str, tuple[RunStatus, object]]:
    async with opened(url) as storage:
        out = {}
        for sid, run_id in parents.items():
            record = await storage.get_run(run_id)
            assert record is not None
            done = record.status is RunStatus.COMPLETED
            out[sid] = (record.status, Codec().decode(record.result) if done else None)
        return out


async def _deliveries(url: str, stream_run_id: str) -> list[int | None]:
    async with opened(url) as storage:
        return [d.seq for d in await streams(storage).list_deliveries(stream_run_id)]


def test_signals_reach_their_stream_step_once_through_kill_9_of_workers(
    tmp_path: Path,
    storage_url: str,
    worker_env: dict[str, str],
    worker_processes: WorkerProcesses,
) -> None:
    seed = int(os.environ.get("KILLTEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    began = time.monotonic()
    (tmp_path / "kstreamwf.py").write_text(textwrap.dedent(WORKFLOW_MODULE))
    shutil.copy(KILL_EFFECTS, tmp_path)
    side_effects = tmp_path / "side_effects.log"
    log = tmp_path / "worker.log"
    worker_env["KILLTEST_SIDE_EFFECTS"] = str(side_effects)

    def start_worker() -> subprocess.Popen[bytes]:
        return worker_processes.start_marked(
            "kstreamwf", storage_url, "--lease-seconds", "2", log=log, since=began
        )

    def context() -> str:
        return f"seed={seed} (rerun with KILLTEST_SEED={seed}); worker log:\n{log.read_text()}"

    parents = asyncio.run(_start_parents(storage_url))
    workers = [start_worker(), start_worker()]
    asyncio.run(_wait_opened(storage_url, within=30))
    kill_at = sorted(rng.sample(range(1, TICKS), KILLS))
    kills = 0
    for tick in range(1, TICKS + 1):
        for sid in STREAMS:
            asyncio.run(_emit(storage_url, sid, "tick", {"stream": sid, "tick": tick}))
        time.sleep(rng.uniform(0.02, 0.12))
        if tick in kill_at:
            victim = workers.pop(rng.randrange(len(workers)))
            assert victim.poll() is None, f"a worker exited by itself; {context()}"
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            kills += 1
            workers.append(start_worker())
    for sid in STREAMS:
        asyncio.run(_emit(storage_url, sid, "stop", {"stream": sid}))

    deadline = time.monotonic() + 60
    while True:
        outcome = asyncio.run(_outcome(storage_url, parents))
        if all(status.is_terminal for status, _ in outcome.values()):
            break
        assert time.monotonic() < deadline, f"stream runs did not finish: {outcome}; {context()}"
        time.sleep(0.3)
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=15)

    executed: Counter[tuple[str, int]] = Counter()
    for line in side_effects.read_text().splitlines():
        sid, seq, _pid = line.split()
        executed[sid, int(seq)] += 1
    for sid in STREAMS:
        # Every tick's execution logged once: the step's own record, in seq order.
        assert outcome[sid] == (RunStatus.COMPLETED, list(range(1, TICKS + 1))), context()
        # Storage delivered each signal once: the start, every tick, the stop.
        assert asyncio.run(_deliveries(storage_url, sid)) == [None, *range(1, TICKS + 2)]
        for seq in range(1, TICKS + 1):
            assert 1 <= executed[sid, seq] <= 1 + kills, (sid, seq, executed[sid, seq])
    reruns = sum(c - 1 for c in executed.values())
    assert reruns <= kills, f"{reruns} re-executions for {kills} kills; {context()}"
    assert "Traceback" not in log.read_text(), context()
    print(f"seed={seed} kills={kills} reruns={reruns} in {time.monotonic() - began:.1f}s")
