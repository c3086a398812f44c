"""A value too large to store is refused up front, with a typed error, and nothing loops.

A step that returned a value its database could not store used to fail its write at every
attempt and run again forever (a 1 GB result on SQLite ran seven times in two minutes, at
16 GB of memory). The codec now measures each encoded value as storage writes it and refuses
one over ``max_payload_size`` (64 MiB by default) with ``PayloadTooLargeError``: a step's
result fails the step at once, like any value that cannot be encoded; a start's arguments and
a hook's payload are refused before anything is written.
"""

from __future__ import annotations

import pytest

from pyworkflow import (
    ConfigurationError,
    PayloadTooLargeError,
    SerializationError,
    WorkflowFailedError,
    hook,
    list_workflow_runs,
    resume_hook,
    start,
    step,
    workflow,
)
from pyworkflow.serialization import DEFAULT_MAX_PAYLOAD_SIZE, Codec
from pyworkflow.testing import WorkflowEnvironment

LIMIT = 1000
attempts: list[int] = []


@step(name="tpl_big", max_retries=5)
async def big(size: int) -> str:
    attempts.append(size)
    return "x" * size


@workflow(name="tpl_caller")
async def caller(size: int) -> str:
    try:
        return await big(size)
    except PayloadTooLargeError as exc:
        return f"refused {exc.size} > {exc.limit}"


@workflow(name="tpl_uncaught")
async def uncaught(size: int) -> str:
    return await big(size)


@workflow(name="tpl_takes")
async def takes(blob: str) -> int:
    return len(blob)


tokens: list[str] = []


@workflow(name="tpl_waits")
async def waits() -> str:
    payload: str = await hook("approval", on_created=tokens.append)
    return payload


def test_the_codec_measures_what_storage_writes() -> None:
    codec = Codec(max_payload_size=LIMIT)
    assert codec.encode("x" * (LIMIT - 2)) == "x" * (LIMIT - 2)  # with its quotes: LIMIT
    with pytest.raises(PayloadTooLargeError) as refused:
        codec.encode("x" * (LIMIT - 1), path="argument 'blob'")
    assert (refused.value.size, refused.value.limit, refused.value.path) == (
        LIMIT + 1,
        LIMIT,
        "argument 'blob'",
    )
    assert "argument 'blob' (str) is 1,001 characters" in str(refused.value)
    assert isinstance(refused.value, SerializationError)
    # Non-ASCII text is stored escaped, and measured so: 200 characters, 1,202 written.
    with pytest.raises(PayloadTooLargeError):
        codec.encode({"name": "é" * 200})
    assert Codec(max_payload_size=None).encode("x" * 10 * LIMIT) == "x" * 10 * LIMIT
    assert Codec().encode(12345678901234567890) == 12345678901234567890  # scalars unmeasured
    for bad in (0, -1, 1.5, "10"):
        with pytest.raises(ConfigurationError, match="max_payload_size"):
            Codec(max_payload_size=bad)  # type: ignore[arg-type]


def test_the_default_limit_is_64_mib_and_the_environment_sets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pyworkflow import config

    assert DEFAULT_MAX_PAYLOAD_SIZE == 64 * 1024 * 1024
    with pytest.raises(PayloadTooLargeError):
        config.build_codec().encode("x" * DEFAULT_MAX_PAYLOAD_SIZE)
    monkeypatch.setenv("PYWORKFLOW_MAX_PAYLOAD_SIZE", "100")
    with pytest.raises(PayloadTooLargeError):
        config.build_codec().encode("x" * 200)
    monkeypatch.setenv("PYWORKFLOW_MAX_PAYLOAD_SIZE", "none")
    assert config.build_codec().encode("x" * 200) == "x" * 200
    monkeypatch.setenv("PYWORKFLOW_MAX_PAYLOAD_SIZE", "64MB")
    with pytest.raises(ConfigurationError, match="PYWORKFLOW_MAX_PAYLOAD_SIZE='64MB'"):
        config.build_codec()


async def test_a_step_result_too_large_fails_the_step_once() -> None:
    attempts.clear()
    async with WorkflowEnvironment(codec=Codec(max_payload_size=LIMIT)) as env:
        assert await env.run(caller, 10) == "x" * 10
        assert await env.run(caller, 5000) == f"refused 5002 > {LIMIT}"
        assert attempts == [10, 5000]  # refused at once: no retry, no loop
        with pytest.raises(WorkflowFailedError, match="5,002 characters encoded") as failed:
            await env.run(uncaught, 5000)
        assert failed.value.error_type == "pyworkflow.exceptions.PayloadTooLargeError"
        assert attempts == [10, 5000, 5000]


async def test_arguments_and_hook_payloads_too_large_write_nothing() -> None:
    async with WorkflowEnvironment(codec=Codec(max_payload_size=LIMIT)) as env:
        with pytest.raises(PayloadTooLargeError, match="argument 'blob'"):
            await start(takes, "x" * 5000)
        assert await list_workflow_runs(workflow_name="tpl_takes") == []
        tokens.clear()
        run_id = await start(waits)
        await env.advance("1s")
        (token,) = tokens
        with pytest.raises(PayloadTooLargeError, match="payload"):
            await resume_hook(token, "x" * 5000)
        await resume_hook(token, "ok")  # the refused payload took nothing
        assert await env.result(run_id) == "ok"
