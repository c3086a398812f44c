"""Structured logs: a user reads run id, workflow, step id and attempt off every record."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import pyworkflow
from pyworkflow import FatalError, step, workflow
from pyworkflow._engine.event_kinds import EVENT_FORMAT
from pyworkflow.cli.logs import TextFormatter
from pyworkflow.events import RunStatus
from pyworkflow.logging import JsonFormatter, RunContextFilter
from pyworkflow.runtime import get_runtime
from pyworkflow.serialization import Codec
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import NewRun

ATTEMPTS: dict[str, int] = {}


class _Lines(logging.Handler):
    """Formats every record it gets, as a user's handler would, and keeps the lines."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.addFilter(RunContextFilter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def _capture(formatter: logging.Formatter) -> Iterator[list[str]]:
    """The lines a handler on ``pyworkflow`` and on the user's ``obs_user`` logger writes."""
    handler = _Lines(formatter)
    loggers = [logging.getLogger("pyworkflow"), logging.getLogger("obs_user")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


@pytest.fixture
def json_lines() -> Iterator[list[str]]:
    with _capture(JsonFormatter()) as lines:
        yield lines


def _records(lines: list[str], run_id: str | None = None) -> list[dict[str, Any]]:
    """The JSON objects a user parses from the lines (of one run, if given)."""
    records = [json.loads(line) for line in lines]
    return [r for r in records if run_id is None or r.get("run_id") == run_id]


@step(name="obs_reserve")
async def reserve(order: str) -> str:
    logging.getLogger("obs_user").info("reserving %s", order)
    return f"reserved {order}"


@step(name="obs_flaky", max_retries=2, retry_delay=0.01)
async def flaky(order: str) -> str:
    ATTEMPTS[order] = ATTEMPTS.get(order, 0) + 1
    if ATTEMPTS[order] == 1:
        raise ConnectionError(f"payment gateway timed out for {order}")
    return f"charged {order}"


@step(name="obs_declined", max_retries=3, retry_delay=0.01)
async def declined(order: str) -> None:
    raise FatalError(f"card declined for {order}")


@workflow(name="obs_order")
async def order_flow(order: str) -> str:
    logging.getLogger("obs_user").info("order %s begins", order)
    first = await reserve(order)
    second = await flaky(order)
    return f"{first}, {second}"


@workflow(name="obs_declined_order")
async def declined_flow(order: str) -> None:
    await declined(order)


async def test_every_record_of_a_run_carries_its_ids(
    pw_memory: Storage, json_lines: list[str]
) -> None:
    order = f"o-{uuid.uuid4().hex[:6]}"
    run_id = await pyworkflow.start(order_flow, order)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == (
        f"reserved {order}, charged {order}"
    )

    engine = [r for r in _records(json_lines) if r["logger"] == "pyworkflow.run"]
    assert engine, "the engine logged nothing at DEBUG"
    assert all(r["run_id"] == run_id and r["workflow"] == "obs_order" for r in engine)

    steps = [(r["level"], r["step_id"], r["attempt"]) for r in engine if "step_id" in r]
    # What a user looks for: each attempt starting, the failed one retried, the step completing.
    assert steps == [
        ("DEBUG", "obs_reserve#1", 1),
        ("INFO", "obs_reserve#1", 1),
        ("DEBUG", "obs_flaky#1", 1),
        ("WARNING", "obs_flaky#1", 1),
        ("DEBUG", "obs_flaky#1", 2),
        ("INFO", "obs_flaky#1", 2),
    ]
    retrying = next(r for r in engine if r["level"] == "WARNING")
    assert "retrying" in retrying["message"]
    assert f"payment gateway timed out for {order}" in retrying["message"]

    ended = engine[-1]
    assert ended["level"] == "INFO"
    assert "completed" in ended["message"]
    assert "step_id" not in ended
    assert "attempt" not in ended


async def test_user_records_inside_steps_and_workflows_get_the_ids(
    pw_memory: Storage, json_lines: list[str]
) -> None:
    order = f"o-{uuid.uuid4().hex[:6]}"
    run_id = await pyworkflow.start(order_flow, order)
    await pyworkflow.get_workflow_result(run_id, timeout=10)

    user = [r for r in _records(json_lines, run_id) if r["logger"] == "obs_user"]
    in_step = next(r for r in user if r["message"] == f"reserving {order}")
    assert (in_step["workflow"], in_step["step_id"], in_step["attempt"]) == (
        "obs_order",
        "obs_reserve#1",
        1,
    )
    in_workflow = next(r for r in user if r["message"] == f"order {order} begins")
    assert in_workflow["workflow"] == "obs_order"
    assert "step_id" not in in_workflow


async def test_a_step_failing_for_good_and_its_run_failing_are_errors(
    pw_memory: Storage, json_lines: list[str]
) -> None:
    order = f"o-{uuid.uuid4().hex[:6]}"
    run_id = await pyworkflow.start(declined_flow, order)
    with pytest.raises(pyworkflow.WorkflowFailedError):
        await pyworkflow.get_workflow_result(run_id, timeout=10)

    errors = [r for r in _records(json_lines, run_id) if r["level"] == "ERROR"]
    assert [r.get("step_id") for r in errors] == ["obs_declined#1", None]
    step_failed, run_failed = errors
    assert step_failed["attempt"] == 1
    assert f"card declined for {order}" in step_failed["message"]
    # The traceback is in the run's history (`pyworkflow runs show`), not in the log line.
    assert "exception" not in step_failed
    assert run_failed["workflow"] == "obs_declined_order"
    assert f"FatalError: card declined for {order}" in run_failed["message"]


async def test_a_taken_over_run_is_logged_with_its_ids(
    pw_memory: Storage, json_lines: list[str]
) -> None:
    # A run whose worker died: leased to an owner whose lease has lapsed.
    order = f"o-{uuid.uuid4().hex[:6]}"
    codec = Codec()
    encoded = codec.encode({"args": [order], "kwargs": {}})
    run_id = f"run_{uuid.uuid4().hex}"
    runtime = await get_runtime()
    await pw_memory.create_run(
        NewRun(
            run_id=run_id,
            workflow_name="obs_order",
            args=encoded,
            started_payload={
                "v": EVENT_FORMAT,
                "workflow": "obs_order",
                "args": encoded,
                "idempotency_key": None,
            },
            now=time.time() - 60,
            lease_owner="dead-host:1:deadbeef",
            lease_expires_at=time.time() - 30,
            status=RunStatus.RUNNING,
        )
    )
    runtime.executor.serve_in_background()  # a worker: it claims the run
    await pyworkflow.get_workflow_result(run_id, timeout=10)

    of_run = [r for r in _records(json_lines) if r.get("run_id") == run_id]
    taken = [r for r in of_run if "taken over" in r["message"]]
    assert len(taken) == 1
    assert taken[0]["level"] == "WARNING"
    assert taken[0]["workflow"] == "obs_order"
    assert "taken over from dead-host:1:deadbeef" in taken[0]["message"]


async def test_text_lines_show_the_ids_the_message_leaves_out(pw_memory: Storage) -> None:
    order = f"o-{uuid.uuid4().hex[:6]}"
    with _capture(TextFormatter()) as lines:
        run_id = await pyworkflow.start(order_flow, order)
        await pyworkflow.get_workflow_result(run_id, timeout=10)

    completed = next(line for line in lines if "step obs_flaky#1 completed" in line)
    assert f"[{run_id}]" in completed
    assert completed.endswith("(attempt=2)")
    mine = next(line for line in lines if f"reserving {order}" in line)
    assert mine.endswith(f"(run={run_id} step=obs_reserve#1 attempt=1)")


def test_json_lines_leave_out_fields_a_record_does_not_have() -> None:
    record = logging.LogRecord("pyworkflow.executor", logging.WARNING, __file__, 1, "m", (), None)
    data = json.loads(JsonFormatter().format(record))
    assert set(data) == {"time", "level", "logger", "message"}
