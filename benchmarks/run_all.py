"""Run every benchmark, each in its own process, and print a table of the ratios.

Usage: ``.venv/bin/python benchmarks/run_all.py [--only B1,B3] [--json results.json]``

Each benchmark prints its own figures and a ``RESULT {...}`` line; this script collects those.
Every figure is a ratio against a baseline measured in the same run on the same disk (see
_baseline.py); the machine may be shared, so each benchmark interleaves baseline and subject
and reports medians. Always exits 0: these are measurements, not tests.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))

BENCHES = [
    ("baseline", "_baseline.py"),
    ("B0", "b0_transaction_shapes.py"),
    ("B1", "b1_sequential.py"),
    ("B2", "b2_concurrent.py"),
    ("B3", "b3_replay.py"),
    ("B4", "b4_memory.py"),
    ("B5", "b5_virtual_clock.py"),
    ("B6", "b6_postgres.py"),
    ("B7", "b7_scale_out.py"),
    ("B8", "b8_celery.py"),
    ("B9", "b9_recovery.py"),
    ("B10", "b10_schedules.py"),
    ("B12", "b12_payload_limits.py"),
]


def run(script: str) -> tuple[dict[str, Any] | None, float, str]:
    begin = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, script)], capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - begin
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
        else:
            print(line)
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
    return result, elapsed, proc.stderr


def table(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    b = results.get("baseline")
    if b:
        rows.append(("floor: raw sqlite3 INSERT+COMMIT", f"{b['sqlite3_us']:.0f} us", "-", "-"))
        rows.append(
            (
                "aiosqlite INSERT+COMMIT",
                f"{b['aiosqlite_us']:.0f} us",
                f"{b['aiosqlite_ratio']:.2f}x",
                "-",
            )
        )
    b0 = results.get("B0")
    if b0:
        for name, r in b0["shapes"].items():
            rows.append((f"B0 {name}", f"{r['us']:.0f} us", f"{r['ratio']:.2f}x", "-"))
    r = results.get("B1")
    if r:
        rows.append(
            (
                "B1 sequential: time per step",
                f"{r['step_us']:.0f} us",
                f"{r['ratio']:.2f}x",
                f"{r['target']}: {_met(r['met'])}",
            )
        )
    r = results.get("B2")
    if r:
        rows.append(
            (
                "B2 concurrent: steps/s vs commits/s",
                f"{r['steps_per_s']:,.0f} steps/s",
                f"{r['ratio']:.2f}x",
                f"{r['target']}: {_met(r['met'])}",
            )
        )
    r = results.get("B3")
    if r:
        for n, row in r["rows"].items():
            rows.append(
                (
                    f"B3 resume {int(n):,} steps ({int(row['events']):,} events)",
                    f"{row['total'] * 1e3:,.0f} ms",
                    f"{row['ratio']:.1f}x json",
                    f"{r['target']}: {_met(r['met'])}" if n == "10000" else "-",
                )
            )
        growth = ", ".join(f"{k}: {v:.2f}" for k, v in r["growth"].items())
        rows.append(
            ("B3 growth exponents (1 = linear)", growth, "-", f"linear: {_met(r['linear'])}")
        )
    r = results.get("B4")
    if r:
        rows.append(
            (
                f"B4 RSS of {r['runs']:,} sleeping runs",
                f"+{r['delta']:.1f} MB",
                f"{r['idle']:.0f} -> {r['held']:.0f} MB",
                f"{r['target']}: {_met(r['met'])}",
            )
        )
    r = results.get("B5")
    if r:
        rows.append(
            (
                "B5 100 steps + 7-day sleeps, virtual clock",
                f"{r['sleeping_us'] / 1e3:,.1f} ms",
                f"{r['ratio']:.2f}x no sleep ({r['skip_ratio']:.2f}x sleep(0))",
                f"{r['target']}: {_met(r['met'])}",
            )
        )
    r = results.get("B6")
    if r:
        rows.append(
            ("floor: raw asyncpg INSERT (autocommit)", f"{r['floor_us']:.0f} us", "1x", "-")
        )
        rows.append(
            (
                "B6 B1 on PostgreSQL: time per step",
                f"{r['b1_step_us']:.0f} us",
                f"{r['b1_ratio']:.2f}x",
                f"<= 2.5x: {_met(r['b1_ratio'] <= 2.5)}",
            )
        )
        rows.append(
            (
                "B6 B2 on PostgreSQL: steps/s vs commits/s",
                f"{r['b2_steps_per_s']:,.0f} steps/s",
                f"{r['b2_ratio']:.2f}x",
                f">= 2x: {_met(r['b2_ratio'] >= 2.0)}",
            )
        )
    r = results.get("B7")
    if r:
        rows.append(
            (
                "B7 scale-out: 2 workers vs 1 (PostgreSQL)",
                f"{r['one_worker']:,.0f} -> {r['two_workers']:,.0f} steps/s",
                f"{r['ratio']:.2f}x",
                f">= 1.3x: {_met(r['met'])}",
            )
        )
    r = results.get("B8")
    if r:
        rows.append(
            (
                "B8 Celery: 10-step workflow, per step vs raw round trip",
                f"{r['wf_latency'] * 1e6:,.0f} us",
                f"{r['latency_ratio']:.2f}x",
                f"<= 2x: {_met(r['latency_ratio'] <= 2.0)}",
            )
        )
        rows.append(
            (
                "B8 Celery: 500 x 3 steps, steps/s vs raw tasks/s",
                f"{r['wf_throughput']:,.0f} steps/s",
                f"{r['throughput_ratio']:.2f}x",
                f">= 0.35x: {_met(r['throughput_ratio'] >= 0.35)}",
            )
        )
        rows.append(
            (
                "B8 Celery: force_local step vs local executor",
                f"{r['celery_local'] * 1e6:,.0f} us",
                f"{r['force_local_ratio']:.2f}x",
                f"<= 1.2x: {_met(r['force_local_ratio'] <= 1.2)}",
            )
        )
    r = results.get("B9")
    if r:
        for name in ("sqlite", "postgres"):
            served = r[f"{name}_served"]
            rows.append(
                (
                    f"B9 kill -9 mid-step, restart: all done ({name})",
                    f"{served:.2f} s after serving",
                    f"{served / 2.0:.2f}x the step",
                    f"<= 1.25x: {_met(served <= 2.5)}",
                )
            )
    r = results.get("B10")
    if r:
        for name in ("sqlite", "postgres"):
            if name not in r:
                continue
            b10 = r[name]
            rows.append(
                (
                    f"B10 idle tick, 10,000 schedules ({name})",
                    f"{b10['tick_ms']:.3f} ms",
                    "-",
                    f"<= 2 ms: {_met(b10['tick_ms'] <= 2.0)}",
                )
            )
            rows.append(
                (
                    f"B10 fire 1,000 due slots vs start() ({name})",
                    f"{b10['fire_ms']:.0f} ms",
                    f"{b10['fire_ratio']:.2f}x",
                    f"<= 1.2x: {_met(b10['fire_ratio'] <= 1.2)}",
                )
            )
    r = results.get("B12")
    if r:
        for name, found in r["results"].items():
            big = found["payload"]["10 MB"]
            rows.append(
                (
                    f"B12 a 10 MB step result, per run ({name})",
                    f"{big['run'] * 1e3:.0f} ms",
                    f"{big['run'] / big['raw']:.2f}x the raw write",
                    "- (limits page)",
                )
            )
            replay = found["replay"]["10,000 events"]
            rows.append(
                (
                    f"B12 resume 10,000 events: read + replay ({name})",
                    f"{replay['replay'] * 1e3:.0f} ms",
                    "-",
                    "- (limits page)",
                )
            )
    return rows


def _met(ok: bool | None) -> str:
    return "MET" if ok else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated names, e.g. B1,B3")
    parser.add_argument("--json", help="also write the collected results to this file")
    args = parser.parse_args()
    only = None if not args.only else {n.strip() for n in args.only.split(",")}
    results: dict[str, dict[str, Any]] = {}
    for name, script in BENCHES:
        if only and name not in only:
            continue
        print(f"=== {name} ({script})", flush=True)
        result, elapsed, _ = run(script)
        print(f"    ({elapsed:.0f} s)\n", flush=True)
        if result is not None:
            results[name] = result
    stamp = datetime.datetime.now().astimezone().isoformat(timespec="minutes")
    print(
        f"Summary, {stamp}, Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    rows = table(results)
    widths = [
        max(len(r[i]) for r in [("benchmark", "measured", "ratio", "target"), *rows])
        for i in range(4)
    ]
    for row in [("benchmark", "measured", "ratio", "target"), *rows]:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"when": stamp, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
