"""The documentation's ``12_schedules.py`` runs unchanged and shows what it says it shows.

It creates a cron schedule (every minute) and an interval schedule (every 30 s), lists them,
pauses and resumes the interval one, triggers the cron one by hand, then runs a
``LocalScheduler`` for 65 s of real time (``local_scheduler.run(duration=65.0)``): that wait
is the example's own and cannot be shortened without editing it, so this test takes about
70 s. It is a module of its own so that pytest-xdist runs it beside the other examples
(``--dist loadscope``: one module, one unit of work); it mostly sleeps.

In those 65 s the cron schedule fires at each minute boundary (one or two), the interval
schedule at +30 s and +60 s after it was resumed; every run completes, and each printed its
steps' lines. The run started by ``trigger_schedule`` is counted at once, still running
("Successful: 0"): our trigger returns once the run is stored, as ``start()`` does by
default (it is executed when the scheduler serves).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_seed_examples import SCHEDULES, expect_in_order, run_example

pytestmark = pytest.mark.slow  # a script that runs its scheduler for 65 s


def test_schedules_example(tmp_path: Path) -> None:
    name = f"durable/{SCHEDULES}"
    out = run_example(name, tmp_path, timeout=110).stdout
    expect_in_order(
        name,
        out,
        [
            r"ID: metrics-every-minute",
            r"Cron: \* \* \* \* \*",
            r"Next run: \d{4}-\d\d-\d\d \d\d:\d\d:00\+00:00",  # a minute boundary
            r"Overlap policy: skip",
            r"Interval: 30s",
            r"metrics-30s-interval: active\n  metrics-every-minute: active",
            r"metrics-30s-interval: paused\n  metrics-every-minute: active",
            r"Triggered run: run_\w+",
            r"Total runs: 1\n",
            r"Scheduler running for 65 seconds",
        ],
    )
    final = out[out.index("=== Final Schedule Stats ===") :]
    stats = {
        m["id"]: (int(m["total"]), int(m["ok"]))
        for m in re.finditer(
            r"(?P<id>metrics-\S+):\n  Total runs: (?P<total>\d+)\n  Successful: (?P<ok>\d+)",
            final,
        )
    }
    # The trigger, then the minute boundaries of 65 s: one or two.
    assert stats["metrics-every-minute"][0] in (2, 3), final
    # +30 s and +60 s after the resume (the scheduler looks every 5 s, for 65 s).
    assert stats["metrics-30s-interval"][0] == 2, final
    for schedule_id, (total, ok) in stats.items():
        assert ok == total, f"{schedule_id}: {ok} of {total} runs succeeded:\n{final}"
    # Every run executed its three steps, each printing its line.
    runs = sum(total for total, _ in stats.values())
    assert out.count("[Step] Collecting metrics at") == runs, out
    assert out.count("[Step] Alert check: None") == runs, out
