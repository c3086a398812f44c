"""A process that only writes from outside (cancel, resume) does not become a worker.

A script imports the workflows (as an application does), cancels or resumes one run and exits.
Another run is due in the same storage (an SQLite file, a PostgreSQL schema) the whole time.
The script must not claim it nor execute any of its steps: that is a worker's job, and a
script that exits a moment later would leave a half-run step to be run again by the real
worker.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pyworkflow import RunStatus
from pyworkflow.storage import RunRecord, storage_from_url
from workers import add_unleased_run

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


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    return str(request.getfixturevalue("postgres_server").fresh_url())


async def _create(url: str, workflow: str, *args: object) -> str:
    storage = storage_from_url(url)
    await storage.open()
    try:
        return await add_unleased_run(storage, workflow, *args)
    finally:
        await storage.close()


async def _read(url: str, run_id: str) -> RunRecord:
    storage = storage_from_url(url)
    await storage.open()
    try:
        record = await storage.get_run(run_id)
        assert record is not None
        return record
    finally:
        await storage.close()


@pytest.mark.parametrize("call", ["cancel", "resume"])
def test_a_process_that_cancels_or_resumes_executes_nothing(
    tmp_path: Path, worker_env: dict[str, str], storage_url: str, call: str
) -> None:
    (tmp_path / "outsidewf.py").write_text(textwrap.dedent(MODULE))
    effects = tmp_path / "effects.log"
    worker_env["OUTSIDE_EFFECTS"] = str(effects)
    due = asyncio.run(_create(storage_url, "close_order", "o-1"))
    target = asyncio.run(_create(storage_url, "nap"))
    subprocess.run(
        [sys.executable, "-c", SCRIPT, storage_url, call, target],
        cwd=tmp_path,
        env=worker_env,
        check=True,
        timeout=60,
    )
    assert not effects.exists(), f"the script executed a step: {effects.read_text()}"
    record = asyncio.run(_read(storage_url, due))
    assert (record.status, record.lease_owner) == (RunStatus.PENDING, None)
    assert record.last_seq == 1, "nothing was logged for the due run"
    if call == "cancel":
        assert asyncio.run(_read(storage_url, target)).cancel_requested
