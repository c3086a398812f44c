"""What the dashboard's tests share: the write token, the clients, waiting for a run."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

import pyworkflow
from pyworkflow import RunStatus
from pyworkflow.storage import Storage

TOKEN = "test-write-token-1234"


@dataclass
class Dashboard:
    """A configured pyworkflow, its storage, and clients of its dashboard."""

    storage: Storage
    reader: httpx.AsyncClient  # no token
    writer: httpx.AsyncClient  # the write token as a bearer header


async def settled(run_id: str, *wanted: RunStatus, within: float = 15.0) -> RunStatus:
    """Wait until the run is in one of ``wanted``; its status."""
    deadline = time.monotonic() + within
    while True:
        status = (await pyworkflow.get_workflow_run(run_id)).status
        if status in wanted:
            return status
        assert time.monotonic() < deadline, f"run {run_id} still {status}"
        await asyncio.sleep(0.02)
