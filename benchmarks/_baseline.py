"""The two raw commit baselines every benchmark divides by, and the helpers they share.

- ``sqlite3_commit``: one single-row INSERT + COMMIT with the stdlib ``sqlite3`` module, WAL,
  ``synchronous=FULL``: the durable floor (one fsync of the WAL per commit).
- ``aiosqlite_commit``: the same through aiosqlite (``await execute`` + ``await commit``: two
  hops to its thread).

Both are measured in the directory the subject uses (the same disk), on a fresh file, and
reported as seconds per commit (the mean over a batch). The machine is shared and noisy, so the
benchmarks interleave baseline and subject batches and report medians over rounds.

Run it alone to print the two floors: ``.venv/bin/python benchmarks/_baseline.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ROW = "x" * 100  # a small payload, about the size of a step event
_counter = 0


def _fresh(directory: str, stem: str) -> str:
    global _counter
    _counter += 1
    path = os.path.join(directory, f"{stem}-{os.getpid()}-{_counter}.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return path


def open_raw(path: str) -> sqlite3.Connection:
    """A stdlib connection in WAL with synchronous=FULL and the baseline's table."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    con.commit()
    return con


def sqlite3_commit(directory: str, n: int = 300) -> float:
    """Seconds per raw ``sqlite3`` single-row INSERT + COMMIT (WAL, synchronous=FULL)."""
    con = open_raw(_fresh(directory, "floor"))
    try:
        for _ in range(10):  # warm the file and the page cache
            con.execute("INSERT INTO t (v) VALUES (?)", (ROW,))
            con.commit()
        start = time.perf_counter()
        for _ in range(n):
            con.execute("INSERT INTO t (v) VALUES (?)", (ROW,))
            con.commit()
        return (time.perf_counter() - start) / n
    finally:
        con.close()


async def aiosqlite_commit(directory: str, n: int = 300) -> float:
    """Seconds per aiosqlite single-row INSERT + COMMIT (same file settings)."""
    import aiosqlite

    path = _fresh(directory, "aio")
    open_raw(path).close()
    async with aiosqlite.connect(path) as db:
        await db.execute("PRAGMA synchronous=FULL")
        for _ in range(10):
            await db.execute("INSERT INTO t (v) VALUES (?)", (ROW,))
            await db.commit()
        start = time.perf_counter()
        for _ in range(n):
            await db.execute("INSERT INTO t (v) VALUES (?)", (ROW,))
            await db.commit()
        return (time.perf_counter() - start) / n


# --- shared helpers -----------------------------------------------------------------------------


@contextmanager
def workdir(prefix: str) -> Iterator[str]:
    """A temporary directory (under $BENCH_DIR if set, else the system temp dir)."""
    base = os.environ.get("BENCH_DIR") or None
    path = tempfile.mkdtemp(prefix=f"pyworkflow-{prefix}-", dir=base)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} us"


def emit(result: dict[str, Any]) -> None:
    """One machine-readable line for run_all.py (the human-readable lines come before it)."""
    print("RESULT " + json.dumps(result), flush=True)


def postgres_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL server process on this machine."""
    import psutil  # only the PostgreSQL benchmarks need it

    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ("postgres", "postmaster"):
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
    return total


def floors(directory: str, rounds: int = 5, n: int = 300) -> dict[str, float]:
    """Median seconds per commit of both baselines over interleaved rounds."""
    raw: list[float] = []
    aio: list[float] = []
    for _ in range(rounds):
        raw.append(sqlite3_commit(directory, n))
        aio.append(asyncio.run(aiosqlite_commit(directory, n)))
    return {"sqlite3": median(raw), "aiosqlite": median(aio)}


def main() -> int:
    with workdir("baseline") as directory:
        found = floors(directory)
    raw, aio = found["sqlite3"], found["aiosqlite"]
    print(
        f"raw sqlite3 INSERT+COMMIT (WAL, synchronous=FULL): {us(raw)} per commit "
        f"({1 / raw:,.0f} commits/s)"
    )
    print(
        f"aiosqlite INSERT+COMMIT:                           {us(aio)} per commit "
        f"({aio / raw:.2f}x the floor)"
    )
    emit(
        {
            "bench": "baseline",
            "sqlite3_us": raw * 1e6,
            "aiosqlite_us": aio * 1e6,
            "aiosqlite_ratio": aio / raw,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
