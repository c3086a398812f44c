"""A client-only process on the Celery executor runs no workflow code when it starts a run.

The Celery executor's starter executes no step anyway, but by default it takes the run's first
turn (workflow code up to its first step) before storing it. Client only, it stores the run
and sends ``advance``: a worker takes the first turn. No broker needed: the app records sends.
"""

from __future__ import annotations

import time
from typing import Any

from pyworkflow import step, workflow
from pyworkflow._engine.new_runs import encode_call, new_run
from pyworkflow.executors.celery.executor import ADVANCE_TASK, STEP_TASK, CeleryExecutor
from pyworkflow.serialization import Codec
from pyworkflow.storage import MemoryStorage

CALLS: list[str] = []


@step()
async def celery_client_only_step() -> int:
    return 1


@workflow()
async def celery_client_only_flow() -> int:
    CALLS.append("workflow code ran")
    return await celery_client_only_step()


class RecordingApp:
    """Stands in for a Celery app: remembers each task sent, sends nothing."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...], str]] = []

    def send_task(self, name: str, *, args: tuple[Any, ...], queue: str) -> None:
        self.sent.append((name, args, queue))


async def start_on(executor: CeleryExecutor, codec: Codec) -> str:
    call = encode_call(celery_client_only_flow, (), {}, codec)
    record, created = await executor.create_run(
        new_run(celery_client_only_flow, call, now=time.time())
    )
    assert created
    return record.run_id


async def test_a_client_only_celery_starter_stores_the_run_and_sends_advance() -> None:
    storage, codec = MemoryStorage(), Codec()
    await storage.open()
    app = RecordingApp()
    CALLS.clear()
    client = CeleryExecutor(storage, codec, app, client_only=True)  # type: ignore[arg-type]
    run_id = await start_on(client, codec)
    stored = await storage.get_run(run_id)
    assert stored is not None
    assert (stored.last_seq, stored.lease_owner, CALLS) == (1, None, [])
    assert app.sent == [(ADVANCE_TASK, (run_id,), "pyworkflow")]
    # The default starter runs the first turn itself and sends the step at once.
    starter = CeleryExecutor(storage, codec, app)  # type: ignore[arg-type]
    other = await start_on(starter, codec)
    assert CALLS == ["workflow code ran"]
    assert [name for name, _, _ in app.sent[1:]] == [STEP_TASK]
    assert (await storage.get_run(other)).last_seq == 2  # type: ignore[union-attr]
