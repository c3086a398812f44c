"""Live objects of a process are refused as arguments, results and payloads, naming the value.

cloudpickle would store a file opened for reading as a copy of its contents, and an asyncio
lock as a fresh lock: neither is what the caller holds. Files (any ``io.IOBase``), sockets,
locks and other synchronisation objects (threading and asyncio), generators, coroutines and
async generators, futures and tasks, threads and processes, database connections are refused
with the ``SerializationError`` that names the argument (also inside a list, a dict or a
dataclass) and says what to pass instead; a step's result, what to return instead.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import pyworkflow
from pyworkflow import SerializationError, step, workflow
from pyworkflow.testing import WorkflowEnvironment

from .run_log import failure_of


@dataclass
class Upload:
    name: str
    body: Any


@workflow(name="tu_takes")
async def takes(payload: Any) -> str:
    return "took it"


@step(name="tu_read", max_retries=0)
async def read(handle: Any) -> str:
    return str(handle.read())


@workflow(name="tu_passes_a_file")
async def passes_a_file(path: str) -> str:
    # A test's shortcut: workflow code should not do I/O.
    with open(path) as handle:  # noqa: ASYNC230
        return await read(handle)


OPENED: list[Any] = []


@step(name="tu_opens", max_retries=3, retry_delay=0.01)
async def opens(path: str) -> Any:
    OPENED.append(open(path))  # noqa: ASYNC230, SIM115 (closed by the test)
    return OPENED[-1]


@workflow(name="tu_returns_a_file")
async def returns_a_file(path: str) -> Any:
    return await opens(path)


def numbers() -> Iterator[int]:
    yield 1


async def async_numbers() -> AsyncIterator[int]:
    yield 1


async def nothing() -> None:
    pass


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "report.txt"
    path.write_text("the contents")
    return path


def live_values(path: Path) -> dict[str, tuple[Any, str]]:
    """Each live value, and a word its refusal must say."""
    loop = asyncio.get_running_loop()
    sqlite = sqlite3.connect(":memory:")
    return {
        "file-for-reading": (open(path), "its path"),
        "binary-file": (open(path, "rb"), "its path"),
        "bytesio": (io.BytesIO(b"x"), "its path"),
        "stringio": (io.StringIO("x"), "its path"),
        "socket": (socket.socket(), "address"),
        "thread-lock": (threading.Lock(), "create it in the step"),
        "rlock": (threading.RLock(), "create it in the step"),
        "condition": (threading.Condition(), "create it in the step"),
        "semaphore": (threading.Semaphore(), "create it in the step"),
        "event": (threading.Event(), "create it in the step"),
        "asyncio-lock": (asyncio.Lock(), "create it in the step"),
        "asyncio-event": (asyncio.Event(), "create it in the step"),
        "asyncio-semaphore": (asyncio.Semaphore(), "create it in the step"),
        "asyncio-queue": (asyncio.Queue(), "create it in the step"),
        "generator": (numbers(), "list"),
        "coroutine": (nothing(), "await"),
        "async-generator": (async_numbers(), "list"),
        "future": (loop.create_future(), "await"),
        "thread": (threading.Thread(target=print), "start it in the step"),
        "process": (multiprocessing.get_context("spawn").Process(target=print), "start it"),
        "popen": (subprocess.Popen([sys.executable, "-c", "pass"]), "start it"),
        "sqlite-connection": (sqlite, "connect in the step"),
        "sqlite-cursor": (sqlite.cursor(), "connect in the step"),
    }


def release(value: Any) -> None:
    if hasattr(value, "close"):
        value.close()
    if isinstance(value, subprocess.Popen):
        value.wait()
    if isinstance(value, asyncio.Future):
        value.cancel()


async def test_live_objects_are_refused_as_arguments_naming_them(
    env: WorkflowEnvironment, text_file: Path
) -> None:
    values = live_values(text_file)
    where = "argument 'payload' of workflow 'tu_takes'"
    try:
        for kind, (value, advice) in values.items():
            for wrapped, path in [
                (value, where),
                ([1, value], f"{where}[1]"),
                ({"attachment": value}, f"{where}['attachment']"),
                (Upload("a", value), f"{where}.body"),
            ]:
                with pytest.raises(SerializationError) as info:
                    await pyworkflow.start(takes, wrapped)
                assert info.value.path == path, kind
                message = str(info.value)
                assert message.startswith(f"{path} (a {info.value.type_name}) cannot be"), kind
                assert advice in message, (kind, message)
    finally:
        for value, _ in reversed(values.values()):  # a cursor before its connection
            release(value)
    assert await pyworkflow.list_workflow_runs() == []


async def test_a_file_passed_to_a_step_is_refused_naming_the_argument(
    env: WorkflowEnvironment, text_file: Path
) -> None:
    err = await failure_of(await pyworkflow.start(passes_a_file, str(text_file)))
    assert err.error_type == "pyworkflow.exceptions.SerializationError"
    assert err.error_message.startswith("argument 'handle' of step 'tu_read#1' (a _io.Text")
    assert "its path" in err.error_message


async def test_a_result_that_cannot_be_stored_says_what_to_return(
    env: WorkflowEnvironment, text_file: Path
) -> None:
    err = await failure_of(await pyworkflow.start(returns_a_file, str(text_file)))
    for handle in OPENED:
        handle.close()
    assert err.error_type == "pyworkflow.exceptions.SerializationError"
    message = err.error_message
    assert message.startswith("result of step 'tu_opens#1' (a _io.TextIOWrapper) cannot be")
    assert "return its path or its contents" in message
    assert "create it in the step" not in message


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle 'Unpicklable' object")


@step(name="tu_makes_unpicklable", max_retries=0)
async def makes_unpicklable() -> Any:
    return Unpicklable()


@workflow(name="tu_returns_unpicklable")
async def returns_unpicklable() -> Any:
    return await makes_unpicklable()


async def test_an_unpicklable_result_says_what_to_return(env: WorkflowEnvironment) -> None:
    err = await failure_of(await pyworkflow.start(returns_unpicklable))
    message = err.error_message
    assert message.startswith("result of step 'tu_makes_unpicklable#1' (a ")
    assert "cannot pickle 'Unpicklable' object" in message
    assert "a result is stored in the run's log: return plain data instead" in message
    assert "create it in the step" not in message
