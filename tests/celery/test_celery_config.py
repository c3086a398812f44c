"""``configure(executor="celery", broker=...)``: each call's broker is the one messages go to."""

from __future__ import annotations

import pytest

import pyworkflow
from pyworkflow import config
from pyworkflow import runtime as pw_runtime


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "_settings", config._Settings())


async def _broker_in_use(broker: str) -> str:
    pyworkflow.configure(executor="celery", broker=broker, storage="memory://")
    try:
        executor = (await pw_runtime.get_runtime()).executor
        return str(executor.app.conf.broker_url)  # type: ignore[attr-defined]
    finally:
        await pyworkflow.shutdown()


async def test_a_later_broker_replaces_the_earlier_one() -> None:
    assert await _broker_in_use("redis://127.0.0.1:6379/14") == "redis://127.0.0.1:6379/14"
    rabbit = "amqp://guest:guest@127.0.0.1:5672//"
    assert await _broker_in_use(rabbit) == rabbit
    assert await _broker_in_use("redis://127.0.0.1:6379/14") == "redis://127.0.0.1:6379/14"
