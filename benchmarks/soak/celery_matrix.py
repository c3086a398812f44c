"""Soak of the Celery executor: kill -9 workers for minutes on every broker x storage.

Not run in CI (tests/celery/test_celery_durability.py is the short version that is). Each cell
of the matrix (Redis or RabbitMQ) x (PostgreSQL or SQLite) starts ``--workers`` real
``celery -A pyworkflow.celery worker -c 2`` processes (leases of 2 s, a dispatch grace of 5 s,
a sweep every 0.3 s, Redis's visibility timeout 5 s), keeps ``--in-flight`` runs of the
workflow mix of ``_soak_flows.py`` going from this process, and every 2-6 s kills -9 either one
pool process (Celery forks another) or a whole worker (its pool processes found first, then the
main process; a new worker is started in its place). After ``--seconds`` it stops starting runs
and kills, waits for every run (children too) to end, and checks:

- every run completed, a started run with the expected result;
- every step attempt executed is one the log knows, and every attempt logged as done ran;
- never twice (DESIGN §2.1): before each kill this process reads every run's log; an execution
  of an attempt (each step records one fsync'ed line as it begins) that started after this
  process had seen the attempt's outcome logged is a **violation**;
- other re-executions are counted: **at-least-once** when the previous execution's process was
  killed between the two (allowed), **unexplained** otherwise (reported, not a failure: a
  stalled process whose step lease lapsed, say).

One line per cell; the exit status is 1 if any cell had a violation, a run that did not complete
(or ended otherwise), or an error. Only processes this script started are ended, by pid, also on
Ctrl-C. The Redis database 14 is flushed and RabbitMQ's ``pyworkflow`` queue purged: do not run
this beside tests/celery on the same servers.

Run: ``.venv/bin/python benchmarks/soak/celery_matrix.py [--seconds 120] [--cells redis-postgres,rabbitmq-sqlite] [--workers 2]``
"""  # noqa: E501 (the command line reads best whole)

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parents[1] / "tests"
# The workers' helpers (tests/celery/celery_workers.py and what it imports from tests/) and the
# workflow module, as tests/celery imports them.
sys.path[:0] = [str(HERE), str(TESTS / "celery"), str(TESTS)]

import asyncpg  # noqa: E402
from _soak_flows import MIX  # noqa: E402
from _soak_ledger import ALL_RUNS, Kill, Ledger, Verdict, read_executions  # noqa: E402
from celery_workers import RABBITMQ, CeleryWorkers, Worker, flush_redis, purge_rabbitmq  # noqa: E402

import pyworkflow  # noqa: E402
from pyworkflow import config  # noqa: E402
from pyworkflow import runtime as pw_runtime  # noqa: E402
from pyworkflow.storage.protocol import Storage  # noqa: E402

CELLS = ("redis-postgres", "redis-sqlite", "rabbitmq-postgres", "rabbitmq-sqlite")
REDIS = "redis://127.0.0.1:6379/14"
PG = os.environ.get("PYWORKFLOW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1/pyworkflow_bench")
LEASE, GRACE = 2.0, 5.0
WORKER_ENV = {
    "PYWORKFLOW_MODULES": "_soak_flows",
    "PYWORKFLOW_LEASE_SECONDS": str(LEASE),
    "PYWORKFLOW_SWEEP_INTERVAL": "0.3",
    "PYWORKFLOW_DISPATCH_GRACE": str(GRACE),
    "PYWORKFLOW_VISIBILITY_TIMEOUT": "5",
}
KILL_EVERY = (2.0, 6.0)
KILL_ERRORS = ("exited with 'signal 9 (SIGKILL)'", "WorkerLostError")
"""What Celery logs as errors when a pool process is killed: expected here."""


@dataclass
class Cell:
    """One broker and one storage, and where the cell's files go."""

    name: str
    broker: str
    storage: str
    workdir: Path
    schema: str | None = None


def make_cell(name: str, root: Path) -> Cell:
    broker_kind, storage_kind = name.split("-")
    workdir = root / name
    workdir.mkdir()
    broker = REDIS if broker_kind == "redis" else RABBITMQ
    if storage_kind == "postgres":
        schema = f"soak_{uuid.uuid4().hex[:8]}"
        return Cell(name, broker, f"{PG}?schema={schema}", workdir, schema)
    return Cell(name, broker, f"sqlite:///{workdir / 'runs.db'}", workdir)


def clear_broker(broker: str) -> None:
    if broker.startswith("redis"):
        flush_redis(broker)
    else:
        purge_rabbitmq(broker)


class Soak:
    """One cell's kill loop: the workers running now, the runs started, the kills made."""

    def __init__(self, cell: Cell, workers: CeleryWorkers, rng: random.Random) -> None:
        self.cell = cell
        self.workers = workers
        self.rng = rng
        self.current: list[Worker] = []
        self.ledger = Ledger()
        self.finished: set[str] = set()  # started runs seen ended (no need to ask again)

    async def storage(self) -> Storage:
        return (await pw_runtime.get_runtime()).storage

    async def top_up(self, in_flight: int) -> None:
        """Start runs of random workflows of the mix until ``in_flight`` are going."""
        store = await self.storage()
        going = 0
        for run_id in self.ledger.runs:
            if run_id not in self.finished:
                record = await store.get_run(run_id)
                if record is not None and record.status.is_terminal:
                    self.finished.add(run_id)
                else:
                    going += 1
        for _ in range(in_flight - going):
            name = self.rng.choice(sorted(MIX))
            n = self.rng.randrange(1000)
            self.ledger.runs[await pyworkflow.start(MIX[name][0], n)] = (name, n)

    def replace_exited(self) -> None:
        """A worker that exited without being killed here is noted and replaced."""
        for worker in list(self.current):
            if worker.proc.poll() is not None:
                pids = frozenset({worker.pid, *worker.seen})
                self.ledger.kills.append(Kill(time.time(), "exited", pids))
                self.workers.kill(worker)  # its pool processes, should any be left
                self.current.remove(worker)
                self.current.append(self.workers.start(wait=False))

    async def kill_one(self) -> None:
        """kill -9 a random pool process, or a whole worker (then start another)."""
        alive = [w for w in self.current if w.proc.poll() is None]
        if not alive:
            return
        await self.ledger.freeze(await self.storage())  # what the log had done before the kill
        pool = [(w, pid) for w in alive for pid in w.pool_pids()]
        if pool and self.rng.random() < 0.5:
            worker, pid = self.rng.choice(pool)
            self.ledger.kills.append(Kill(time.time(), "pool", frozenset({pid})))
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        worker = self.rng.choice(alive)
        pids = frozenset({worker.pid, *worker.pool_pids()})  # the pool found before the kill
        self.ledger.kills.append(Kill(time.time(), "worker", pids))
        self.workers.kill(worker)
        self.current.remove(worker)
        self.current.append(self.workers.start(wait=False))

    async def run(self, seconds: float, count: int, in_flight: int, drain: float) -> Verdict:
        cell = self.cell
        began = time.monotonic()
        pyworkflow.configure(
            executor="celery",
            broker=cell.broker,
            storage=cell.storage,
            dispatch_grace=GRACE,
            lease_seconds=LEASE,
        )
        try:
            await self.storage()  # creates the database, schema or file before any worker
            self.current = [self.workers.start(wait=False) for _ in range(count)]
            for worker in self.current:
                self.workers.wait_ready(worker)
            deadline = time.monotonic() + seconds
            next_kill = time.monotonic() + self.rng.uniform(*KILL_EVERY)
            while time.monotonic() < deadline:
                await self.top_up(in_flight)
                self.replace_exited()
                if time.monotonic() >= next_kill:
                    await self.kill_one()
                    next_kill = time.monotonic() + self.rng.uniform(*KILL_EVERY)
                await asyncio.sleep(0.2)
            pending = await self.drain(drain)
            verdict = await self.ledger.check(
                await self.storage(), read_executions(self.side_effects), pending
            )
            verdict.log_errors = log_errors(self.workers)
        finally:
            await pyworkflow.shutdown()
        verdict.wall = time.monotonic() - began
        return verdict

    @property
    def side_effects(self) -> Path:
        return self.cell.workdir / "side_effects.log"

    async def drain(self, within: float) -> int:
        """Wait for every run to end (workers kept alive); how many did not within ``within``."""
        store = await self.storage()
        deadline = time.monotonic() + within
        while True:
            records = await store.list_runs(limit=ALL_RUNS)
            pending = sum(not r.status.is_terminal for r in records)
            if not pending or time.monotonic() > deadline:
                return pending
            self.replace_exited()
            await asyncio.sleep(0.5)


def log_errors(workers: CeleryWorkers) -> list[str]:
    """The workers' ERROR lines, but Celery's own about pool processes killed here."""
    logs = {worker.log for worker in workers.started}
    return [
        f"{log.name}: {line}"
        for log in sorted(logs)
        for line in log.read_text(errors="replace").splitlines()
        if "ERROR/" in line and not any(kill in line for kill in KILL_ERRORS)
    ]


async def drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(PG)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def run_cell(cell: Cell, args: argparse.Namespace, rng: random.Random) -> Verdict | None:
    """The cell's soak; its workers are killed, by pid, whatever happens. None: it errored."""
    clear_broker(cell.broker)
    workers = CeleryWorkers(cell.workdir, cell.broker, cell.storage, WORKER_ENV)
    workers.env["PYTHONPATH"] += os.pathsep + str(HERE)  # the workers import _soak_flows
    # A step that ever ran in this process (it should not: steps run on workers) records too.
    os.environ["KILLTEST_SIDE_EFFECTS"] = str(cell.workdir / "side_effects.log")
    soak = Soak(cell, workers, rng)
    # Each cell configures its own broker and storage: put the settings back afterwards, as
    # tests/celery's client does, so one cell's settings never leak into the next.
    settings = config._settings
    try:
        return asyncio.run(soak.run(args.seconds, args.workers, args.in_flight, args.drain))
    except Exception:
        traceback.print_exc()
        return None
    finally:
        config._settings = settings
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C waits for this
        try:
            workers.end_all()
            clear_broker(cell.broker)
        finally:
            signal.signal(signal.SIGINT, previous)


def summary(cell: Cell, verdict: Verdict | None) -> str:
    if verdict is None:
        return f"{cell.name:<18} ERROR (traceback above; logs in {cell.workdir})"
    kinds = verdict.kill_kinds
    line = (
        f"{cell.name:<18} runs {verdict.runs} (+{verdict.children} children)  "
        f"steps {verdict.steps} ({verdict.executions} executions)  "
        f"kills {sum(kinds.values())} ({kinds['pool']} pool, {kinds['worker']} worker)  "
        f"at-least-once {verdict.at_least_once}  unexplained {len(verdict.unexplained)}  "
        f"violations {len(verdict.violations)}  not completed {len(verdict.incomplete)}  "
        f"log errors {len(verdict.log_errors)}  "
        f"wall {verdict.wall:.1f}s  {'OK' if verdict.ok else 'FAIL'}"
    )
    if kinds["exited"]:
        line += f"  ({kinds['exited']} worker(s) exited by themselves)"
    return line


def details(cell: Cell, verdict: Verdict, limit: int = 10) -> list[str]:
    out = []
    for title, items in (
        ("violations", verdict.violations),
        ("not completed", verdict.incomplete),
        ("unexplained re-executions", verdict.unexplained),
        ("worker log errors", verdict.log_errors),
    ):
        out += [f"  {title}:"] * bool(items) + [f"    {item}" for item in items[:limit]]
        if len(items) > limit:
            out.append(f"    ... {len(items) - limit} more")
    if out:
        out.append(f"  logs, side effects and storage: {cell.workdir}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="kill loop per cell")
    parser.add_argument("--cells", default=",".join(CELLS), help=f"of {', '.join(CELLS)}")
    parser.add_argument("--workers", type=int, default=2, help="celery workers (-c 2 each)")
    parser.add_argument("--in-flight", type=int, default=6, help="runs kept going at once")
    parser.add_argument("--drain", type=float, default=300, help="seconds for runs to end")
    parser.add_argument("--seed", type=int, default=None, help="of the kill and run choices")
    parser.add_argument("--keep", action="store_true", help="keep files and schemas of passes")
    args = parser.parse_args()
    names = [c.strip() for c in args.cells.split(",") if c.strip()]
    if unknown := [c for c in names if c not in CELLS]:
        parser.error(f"unknown cells {unknown}; choose from {', '.join(CELLS)}")
    seed = args.seed if args.seed is not None else time.time_ns() % 1_000_000
    print(f"seed {seed}; {args.seconds:g}s per cell; {args.workers} workers", flush=True)
    # SIGTERM ends the soak like Ctrl-C: through the finally blocks that kill the workers.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    root = Path(tempfile.mkdtemp(prefix="pyworkflow-soak-"))
    failed, failures = True, 0  # failed until every cell has run
    try:
        for name in names:
            cell = make_cell(name, root)
            verdict = run_cell(cell, args, random.Random(f"{seed}-{name}"))
            print(summary(cell, verdict), flush=True)
            if verdict is not None:
                print(*details(cell, verdict), sep="\n", end="\n" * bool(details(cell, verdict)))
            if verdict is None or not verdict.ok:
                failures += 1
            elif not args.keep:
                shutil.rmtree(cell.workdir, ignore_errors=True)
                if cell.schema:
                    asyncio.run(drop_schema(cell.schema))
        failed = bool(failures)
    except KeyboardInterrupt:
        print(f"interrupted; the workers are ended, their files are in {root}", flush=True)
        return 130
    finally:
        if not failed and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
