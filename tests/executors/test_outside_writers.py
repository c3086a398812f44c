"""A process that only writes from outside (cancel, resume) does not become a worker.

A script imports the workflows (as an application does), cancels or resumes one run and exits.
Another run is due in the same SQLite file the whole time. The script must not claim it nor
execute any of its steps: that is a worker's job, and a script that exits a moment later would
leave a half-run step to be run again by the real worker.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pyworkflow import RunStatus
from workers import create_unleased_run, read_run

pytestmark = pytest.mark.slow

MODULE = """
import asyncio
import os

from pyworkflow import get_step_context, sleep, step, workflow


@step()
async def cleanup(order: str) -> str:
    with open(os.environ["OUTSIDE_EFFECTS"], "a") as out:
        out.write(f"{get_step_context().run_id} {os.getpid()}\\n")
    await asyncio.sleep(0.5)
    return order


@workflow()
async def close_order(order: str) -> str:
    return await cleanup(order)


@workflow()
async def nap() -> None:
    await sleep("1h")
"""

SCRIPT = """
import asyncio, sys
import pyworkflow, outsidewf

async def main() -> None:
    pyworkflow.configure(storage=sys.argv[1])
    if sys.argv[2] == "cancel":
        await pyworkflow.cancel_workflow(sys.argv[3], reason="from a script")
    else:
        await pyworkflow.resume(sys.argv[3])
    await asyncio.sleep(1.5)  # time enough to claim and start the due run, were it a worker

asyncio.run(main())
"""


@pytest.mark.parametrize("call", ["cancel", "resume"])
def test_a_process_that_cancels_or_resumes_executes_nothing(
    tmp_path: Path, worker_env: dict[str, str], call: str
) -> None:
    (tmp_path / "outsidewf.py").write_text(textwrap.dedent(MODULE))
    effects = tmp_path / "effects.log"
    worker_env["OUTSIDE_EFFECTS"] = str(effects)
    db = tmp_path / "runs.db"
    due = create_unleased_run(db, "close_order", "o-1")
    target = create_unleased_run(db, "nap")
    subprocess.run(
        [sys.executable, "-c", SCRIPT, f"sqlite:///{db}", call, target],
        cwd=tmp_path,
        env=worker_env,
        check=True,
        timeout=60,
    )
    assert not effects.exists(), f"the script executed a step: {effects.read_text()}"
    record = read_run(db, due)
    assert (record.status, record.lease_owner) == (RunStatus.PENDING, None)
    assert record.last_seq == 1, "nothing was logged for the due run"
    if call == "cancel":
        assert read_run(db, target).cancel_requested
