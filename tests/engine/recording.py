"""Side effects counted outside the engine, and the steps and workflows several test modules share.

Every workflow and step of the engine tests is defined at module level under a ``tw_`` name (the
registry refuses two functions under one name), so one defined here is imported, never redefined.
Side effects are counted in ``CALLS``, keyed by a per-test ``token()`` so the memory and SQLite
runs of a test do not mix.
"""

from __future__ import annotations

import uuid
from collections import Counter

from pyworkflow import step, workflow

CALLS: Counter[tuple[str, str]] = Counter()


def token() -> str:
    return uuid.uuid4().hex


@step(name="tw_double")
async def double(tok: str, x: int) -> int:
    CALLS[tok, "double"] += 1
    return x * 2


@step(name="tw_add", max_retries=0)
async def add(tok: str, x: int, y: int) -> int:
    CALLS[tok, "add"] += 1
    return x + y


@step(name="tw_always_fails", max_retries=3, retry_delay=0.01)
async def always_fails(tok: str) -> None:
    CALLS[tok, "always_fails"] += 1
    raise ValueError(f"attempt {CALLS[tok, 'always_fails']} of {tok} failed")


@workflow(name="tw_two_steps")
async def two_steps(tok: str, x: int) -> int:
    a = await double(tok, x)
    return await add(tok, a, 1)


@workflow(name="tw_call_always_fails")
async def call_always_fails(tok: str) -> None:
    await always_fails(tok)
