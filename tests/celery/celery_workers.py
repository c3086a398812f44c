"""Real ``celery worker`` processes for tests/celery, and a broker each test has to itself.

``CeleryWorkers`` starts ``celery -A pyworkflow.celery worker`` processes the way a user would
(the workflow module importable through ``PYTHONPATH``, storage and broker from ``PYWORKFLOW_*``
variables) and ends, at teardown, only the processes it started, by pid: for a Celery main
process its pool processes too, found before the main process is killed.

Brokers: each test (or module of tests sharing workers) gets a Redis database of its own from
``REDIS_DBS``, flushed before any worker starts, so no message of another test can reach it;
RabbitMQ has one virtual host here, so its ``pyworkflow`` queue is purged instead (two
sessions of tests/celery at once would share it: run one at a time).

Importable as ``celery_workers``: tests/celery has no ``__init__.py``, so pytest (``prepend``
import mode) puts it on ``sys.path``, as it does tests/ for ``workers`` and ``kill_effects``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis
from kombu import Connection

from workers import subprocess_env

__all__ = [
    "FLOWS",
    "RABBITMQ",
    "CeleryWorkers",
    "Deployment",
    "Worker",
    "flush_redis",
    "fresh_redis",
    "purge_rabbitmq",
    "queued",
]

HERE = Path(__file__).parent
FLOWS = "celery_flows"
"""The workflow module the workers import (tests/celery/celery_flows.py)."""
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_HOST = "redis://127.0.0.1:6379"
QUEUES = ("pyworkflow", "emails")
"""The queues the tests' steps use."""
REDIS_DBS = range(8, 16)
"""Redis databases tests/celery may flush; 0-7 are left to everyone else."""

# Start at a pid-dependent database so two sessions at once are unlikely to share one.
_redis_dbs = itertools.count(os.getpid() % len(REDIS_DBS))


def fresh_redis() -> str:
    """The URL of a Redis database of tests/celery, flushed: no message of an earlier test."""
    url = f"{REDIS_HOST}/{REDIS_DBS[next(_redis_dbs) % len(REDIS_DBS)]}"
    flush_redis(url)
    return url


def flush_redis(url: str) -> None:
    """Drop every message (and unacknowledged delivery) in the Redis database of ``url``."""
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def purge_rabbitmq(url: str = RABBITMQ, queues: tuple[str, ...] = QUEUES) -> None:
    """Empty the named queues of RabbitMQ (those that exist)."""
    with Connection(url, connect_timeout=5) as conn:
        for queue in queues:
            channel = conn.channel()
            try:
                channel.queue_purge(queue)
            except Exception:  # a queue never declared: nothing to purge
                pass
            finally:
                with contextlib.suppress(Exception):
                    channel.close()


def queued(broker: str, queue: str) -> int:
    """How many messages wait in ``queue`` (not those delivered and unacknowledged)."""
    if broker.startswith("redis"):
        client = redis.Redis.from_url(broker)
        try:
            return int(client.llen(queue))
        finally:
            client.close()
    with Connection(broker, connect_timeout=5) as conn:
        channel = conn.channel()
        try:
            return int(channel.queue_declare(queue, passive=True).message_count)
        except Exception:  # no such queue yet
            return 0
        finally:
            with contextlib.suppress(Exception):
                channel.close()


@dataclass
class Worker:
    """One ``celery worker`` main process and where its output goes."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    start_offset: int
    """Where this start's lines begin in ``log`` (a log may hold several starts)."""
    seen: dict[int, float] = field(default_factory=dict)
    """Every pool process seen (pid -> its start time, so a reused pid is never killed)."""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        """What this start of the worker has logged so far."""
        return self.log.read_bytes()[self.start_offset :].decode(errors="replace")

    def pool_pids(self) -> list[int]:
        """The pids of its pool processes now (and remembers them, to end them later)."""
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        pids = []
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                self.seen.setdefault(child.pid, child.create_time())
                pids.append(child.pid)
        return pids

    def end_seen(self) -> None:
        """SIGKILL every pool process seen that still runs (a pid now reused is left alone)."""
        for pid, created in self.seen.items():
            with contextlib.suppress(psutil.NoSuchProcess):
                if psutil.Process(pid).create_time() == created:
                    _kill_pid(pid)


class CeleryWorkers:
    """Starts ``celery worker`` processes and remembers each one, and its pool, to end them.

    Args:
        workdir: the processes' working directory and where their logs go.
        broker: the broker URL (``PYWORKFLOW_BROKER``).
        storage: the storage URL (``PYWORKFLOW_STORAGE``).
        env: more variables for every worker (``PYWORKFLOW_SWEEP_INTERVAL`` ...).
    """

    def __init__(
        self, workdir: Path, broker: str, storage: str, env: dict[str, str] | None = None
    ) -> None:
        self.workdir = workdir
        self.broker = broker
        self.storage = storage
        self.env = subprocess_env(HERE)
        # tests/ too: the workflow module imports kill_effects from there.
        self.env["PYTHONPATH"] += os.pathsep + str(HERE.parent)
        self.env.update(
            {
                "PYWORKFLOW_BROKER": broker,
                "PYWORKFLOW_STORAGE": storage,
                "PYWORKFLOW_MODULES": FLOWS,
                "PYWORKFLOW_VISIBILITY_TIMEOUT": "5",
                "PYWORKFLOW_SWEEP_INTERVAL": "0.3",
                "CF_DIR": str(workdir),
                "KILLTEST_SIDE_EFFECTS": str(workdir / "side_effects.log"),
            }
        )
        self.env.update(env or {})
        self.started: list[Worker] = []
        self._names = itertools.count(1)

    def start(
        self,
        *,
        queues: str | None = None,
        concurrency: int = 2,
        env: dict[str, str] | None = None,
        name: str | None = None,
        wait: bool = True,
        via_cli: bool = False,
        beat: bool = False,
        argv: list[str] | None = None,
    ) -> Worker:
        """Start one worker (``-Q queues`` if given) and, unless ``wait=False``, wait for it.

        ``via_cli``: start it as ``pyworkflow worker run --executor celery`` instead (its
        Celery node name is then ``celery@host``, so ``name`` must be ``"celery"``).
        ``beat``: with Celery beat embedded (``worker run --beat``; needs ``via_cli``).
        ``argv``: start this command line instead (a Celery worker whose node is ``name``).
        """
        assert via_cli or not beat, "beat=True is the CLI's --beat"
        name = name or f"w{next(self._names)}"
        log = self.workdir / f"{name}.log"
        if argv is not None:
            args = list(argv)
        elif via_cli:
            args = [
                sys.executable, "-m", "pyworkflow.cli", "worker", "run", "--executor", "celery",
                "--concurrency", str(concurrency), *(["--beat"] if beat else []),
            ]  # fmt: skip
        else:
            args = [
                sys.executable, "-m", "celery", "-A", "pyworkflow.celery", "worker",
                "-c", str(concurrency), "--loglevel=INFO", "-n", f"{name}@%h",
                # No mingle/gossip/heartbeat: each costs start-up time and tests need none.
                "--without-mingle", "--without-gossip", "--without-heartbeat",
            ]  # fmt: skip
        if queues:
            args += ["-Q", queues]
        offset = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            proc = subprocess.Popen(
                args,
                cwd=self.workdir,
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(name, proc, log, offset)
        self.started.append(worker)
        if wait:
            self.wait_ready(worker)
        return worker

    def start_beat(self, *, name: str = "beat") -> Worker:
        """Start ``celery beat`` with pyworkflow's scheduler class, as the seed docs spell it."""
        args = [
            sys.executable, "-m", "celery", "-A", "pyworkflow.celery.app", "beat",
            "--scheduler", "pyworkflow.celery.scheduler:PyWorkflowScheduler", "--loglevel", "INFO",
        ]  # fmt: skip
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                args, cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        beat = Worker(name, proc, log, 0)
        self.started.append(beat)
        self.wait_ready(beat, pattern="beat fires the schedules of")
        return beat

    def wait_ready(self, worker: Worker, within: float = 60, pattern: str | None = None) -> None:
        """Wait until the worker consumes; fail with its log if it exits or takes too long.

        ``pattern``: wait for this line instead of Celery's "ready".
        """
        deadline = time.monotonic() + within
        ready = re.escape(pattern) if pattern else rf"{re.escape(worker.name)}@\S+ ready\."
        while not re.search(ready, worker.output()):
            assert worker.proc.poll() is None, f"worker {worker.name} exited:\n{worker.output()}"
            assert time.monotonic() < deadline, (
                f"worker {worker.name} not ready:\n{worker.output()}"
            )
            time.sleep(0.05)

    def kill(self, worker: Worker) -> None:
        """SIGKILL the worker's main process and its pool processes (found first), by pid."""
        worker.pool_pids()
        if worker.proc.poll() is None:
            worker.proc.kill()
        worker.end_seen()
        worker.proc.wait()

    def kill_pool_process(self, worker: Worker, pid: int) -> None:
        """SIGKILL one pool process of ``worker`` (Celery starts a new one in its place)."""
        assert pid in worker.pool_pids(), f"{pid} is not a pool process of {worker.name}"
        _kill_pid(pid)

    def stop(self, worker: Worker, within: float = 20) -> int:
        """SIGTERM: a warm shutdown. Returns the exit code (killed, and an error, if it hangs)."""
        worker.pool_pids()
        worker.proc.send_signal(signal.SIGTERM)
        try:
            return worker.proc.wait(timeout=within)
        finally:
            self.kill(worker)  # whatever is left of it

    def end_all(self) -> None:
        """Kill every process started here that still runs (main and pool), by pid."""
        for worker in self.started:
            self.kill(worker)

    def logs(self) -> str:
        """Every started worker's log, for a failure message."""
        seen: set[Path] = set()
        parts = []
        for worker in self.started:
            if worker.log not in seen:
                seen.add(worker.log)
                text = worker.log.read_text(errors="replace")
                parts.append(f"--- {worker.log.name}\n{text[-15000:]}")
        return "\n".join(parts)


def _kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class Deployment:
    """A broker, a storage and the workers serving them."""

    broker: str
    storage: str
    workers: CeleryWorkers
    workdir: Path

    def context(self) -> str:
        """The workers' logs, for a failure message."""
        return self.workers.logs()

    def unexpected_errors(self, *expected: str) -> list[str]:
        """The workers' ERROR lines and tracebacks, but those containing one of ``expected``."""
        return [
            line
            for line in self.context().splitlines()
            if ("ERROR/" in line or line.startswith("Traceback"))
            and not any(what in line for what in expected)
        ]
