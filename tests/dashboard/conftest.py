"""The dashboard over pyworkflow configured on SQLite and on PostgreSQL, served in-process.

The app is called through httpx's ASGI transport: no port, no server. The test process is the
worker too (its runtime executes the runs it starts), as the dashboard's own process never is.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import pyworkflow
from pyworkflow import config
from pyworkflow.dashboard import create_app

sys.path.insert(0, str(Path(__file__).parent))

from dash_support import TOKEN, Dashboard

from backends import fresh_storages


@pytest.fixture(params=["sqlite", "postgres"])
async def dash(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Dashboard]:
    import dash_flows  # noqa: F401  (registers the workflows)

    monkeypatch.setattr(config, "_settings", config._settings)
    storage = fresh_storages(request.param, tmp_path, request)()
    pyworkflow.configure(storage=storage, lease_seconds=10.0, horizon_seconds=5.0)
    app = create_app(write_token=TOKEN)
    transport = httpx.ASGITransport(app=app)
    base = "http://dashboard.test"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url=base) as reader,
            httpx.AsyncClient(transport=transport, base_url=base, headers=headers) as writer,
        ):
            yield Dashboard(storage, reader, writer)
    finally:
        await pyworkflow.shutdown()
        await storage.close()
