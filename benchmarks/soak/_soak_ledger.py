"""What celery_matrix.py saw of a cell (runs, kills, outcomes in the log) and its verdict.

The never-twice check (DESIGN §2.1) compares two clocks of one machine: the time a step
execution began (the first field after the attempt in its side-effect line) and the time this
process first read the attempt's outcome in the log (``Ledger.freeze``, before each kill). An
execution that began after the soak had read its attempt's outcome is a violation; reading the
log can only come late, which misses a violation, never invents one.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from _soak_flows import MIX

import pyworkflow
from pyworkflow import EventType, RunStatus
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import EventRecord, RunRecord

Key = tuple[str, str, int]
"""An attempt: (run id, step id, attempt)."""

ALL_RUNS = 10**9  # list_runs' limit when the soak wants every run


@dataclass(frozen=True)
class Execution:
    """One line of the side-effect file: an attempt began to execute."""

    run_id: str
    step_id: str
    attempt: int
    at: float
    pid: int

    @property
    def key(self) -> Key:
        return (self.run_id, self.step_id, self.attempt)

    def __str__(self) -> str:
        return (
            f"{self.run_id} {self.step_id} attempt {self.attempt} at {self.at:.3f} pid {self.pid}"
        )


@dataclass(frozen=True)
class Kill:
    """A kill -9 (``pool`` or ``worker``), or a worker found ``exited`` on its own."""

    at: float
    kind: str
    pids: frozenset[int]


def read_executions(path: Path) -> list[Execution]:
    """Every execution recorded in the side-effect file (written by kill_effects.py)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        run_id, step_id, attempt, at, pid = line.split()
        out.append(Execution(run_id, step_id, int(attempt), float(at), int(pid)))
    return out


def attempts(events: list[EventRecord]) -> tuple[set[Key], set[Key], set[Key]]:
    """The attempts a run's log started, those it logged as done (completed or retrying), and
    those it failed for good (a failure needs no execution: the delivery limit)."""
    started: set[Key] = set()
    done: set[Key] = set()
    failed: set[Key] = set()
    latest: dict[str, int] = {}
    for event in events:
        payload = event.payload
        step_id = payload.get("step_id")
        if event.type is EventType.STEP_STARTED:
            latest[step_id] = payload["attempt"]
            started.add((event.run_id, step_id, payload["attempt"]))
        elif event.type is EventType.STEP_RETRYING:
            done.add((event.run_id, step_id, payload["attempt"]))
        elif event.type is EventType.STEP_COMPLETED:
            done.add((event.run_id, step_id, latest[step_id]))
        elif event.type is EventType.STEP_FAILED:
            failed.add((event.run_id, step_id, latest[step_id]))
    return started, done, failed


@dataclass
class Verdict:
    """A cell's figures and what went wrong; ``ok`` when nothing that fails a cell did."""

    runs: int = 0
    children: int = 0
    steps: int = 0
    executions: int = 0
    kill_kinds: Counter[str] = field(default_factory=Counter)
    at_least_once: int = 0
    unexplained: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    wall: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations and not self.incomplete


class Ledger:
    """The runs started, the kills made and when each attempt's outcome was first read."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[str, int]] = {}
        """Runs this process started: run id -> (workflow name, argument)."""
        self.kills: list[Kill] = []
        self.seen_done: dict[Key, float] = {}
        """Attempt -> the time this process first read its outcome in the log."""
        self._ended: set[str] = set()  # runs ended at a freeze: their logs change no more

    async def freeze(self, store: Storage) -> None:
        """Read the log of every run (children too) not ended at an earlier freeze."""
        for record in await store.list_runs(limit=ALL_RUNS):
            if record.run_id in self._ended:
                continue
            events = await store.load_events(record.run_id)
            read_at = time.time()  # after the read: every outcome read was logged by now
            for key in attempts(events)[1]:
                self.seen_done.setdefault(key, read_at)
            if record.status.is_terminal:  # read before its events: they are all there
                self._ended.add(record.run_id)

    async def check(self, store: Storage, executions: list[Execution], pending: int) -> Verdict:
        """Once every run has ended (``pending`` had not): the cell's verdict."""
        verdict = Verdict(executions=len(executions))
        verdict.kill_kinds.update(k.kind for k in self.kills)
        records = await store.list_runs(limit=ALL_RUNS)
        if pending:
            verdict.incomplete.append(f"{pending} runs had not ended when the drain timed out")
        started: set[Key] = set()
        done: set[Key] = set()
        failed: set[Key] = set()
        for record in records:
            verdict.incomplete += await self._check_run(record)
            run_started, run_done, run_failed = attempts(await store.load_events(record.run_id))
            started |= run_started
            done |= run_done
            failed |= run_failed
        verdict.runs = len(self.runs)
        verdict.children = len(records) - len(self.runs)
        verdict.steps = len({key[:2] for key in started})
        by_key: dict[Key, list[Execution]] = defaultdict(list)
        for execution in executions:
            by_key[execution.key].append(execution)
        for key in by_key.keys() - started:
            verdict.violations.append(f"{key} executed, but the log never started it")
        for key in done - by_key.keys():
            verdict.violations.append(f"{key} is logged as done but never executed")
        for key, runs in by_key.items():
            runs.sort(key=lambda e: e.at)
            seen_done = self.seen_done.get(key)
            for execution in runs:
                if seen_done is not None and execution.at > seen_done:
                    verdict.violations.append(
                        f"{execution} began {execution.at - seen_done:.3f}s after the soak "
                        f"read the attempt's outcome in the log (all: {[str(e) for e in runs]})"
                    )
            for before, again in itertools.pairwise(runs):
                if seen_done is not None and again.at > seen_done:
                    continue  # a violation, above
                if any(self._killed_between(before, again)):
                    verdict.at_least_once += 1
                else:
                    verdict.unexplained.append(f"{again} ran again after {before}, no kill of it")
        return verdict

    async def _check_run(self, record: RunRecord) -> list[str]:
        where = f"run {record.run_id} ({record.workflow_name})"
        if record.status is not RunStatus.COMPLETED:
            return [f"{where} ended {record.status.value}: {record.error}"]
        if record.run_id not in self.runs:
            return []  # a child: its parent's result checks its result
        name, n = self.runs[record.run_id]
        result = await pyworkflow.get_workflow_result(record.run_id, timeout=5)
        expected = MIX[name][1](n)
        return [] if result == expected else [f"{where}({n}) = {result!r}, not {expected!r}"]

    def _killed_between(self, before: Execution, again: Execution) -> Iterator[Kill]:
        """Kills of the process of ``before`` after it began and before ``again`` did."""
        for kill in self.kills:
            if before.at <= kill.at <= again.at and before.pid in kill.pids:
                yield kill
