"""Looking at runs from the test process of tests/celery: events, rows, waiting on storage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pyworkflow import runtime as pw_runtime
from pyworkflow.events import EventType, RunStatus
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import EventRecord, RunRecord


async def storage() -> Storage:
    """The storage of this process's runtime (the deployment's, once ``client`` connected)."""
    return (await pw_runtime.get_runtime()).storage


async def events(run_id: str) -> list[EventRecord]:
    return await (await storage()).load_events(run_id)


async def types(run_id: str) -> list[EventType]:
    return [event.type for event in await events(run_id)]


async def run_record(run_id: str) -> RunRecord:
    record = await (await storage()).get_run(run_id)
    assert record is not None, f"no run {run_id}"
    return record


async def wait_for(
    what: Callable[[], Awaitable[Any]], within: float, context: Callable[[], str] = str
) -> Any:
    """Poll ``await what()`` until it is truthy; fail with ``context()`` after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        value = await what()
        if value:
            return value
        assert time.monotonic() < deadline, f"still {value!r} after {within}s\n{context()}"
        await asyncio.sleep(0.05)


async def wait_status(
    run_id: str, status: RunStatus, within: float, context: Callable[[], str] = str
) -> RunRecord:
    async def reached() -> RunRecord | None:
        record = await run_record(run_id)
        return record if record.status is status else None

    return await wait_for(reached, within, context)  # type: ignore[no-any-return]
