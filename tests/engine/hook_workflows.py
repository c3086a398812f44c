"""Workflows waiting on hooks, shared by test_hooks, test_typed_hooks and test_concurrent_hooks.

Each hands its tokens to ``waits.keep``, under ``"<test token>/<hook name>"``. The typed hooks'
payload types live in ``hook_payloads``, which imports none of this.
"""

from __future__ import annotations

from typing import Any

from pyworkflow import define_hook, hook, workflow

from .hook_payloads import Approval, Rating, Shipping
from .waits import keep

approval_hook = define_hook("approval", Approval)
shipping_hook = define_hook("shipping", Shipping)
rating_hook = define_hook("rating", Rating)


@workflow(name="th_wait")
async def wait_for_approval(tok: str) -> dict[str, Any]:
    payload = await hook("approval", on_created=keep(tok, "approval"))
    return {"got": payload}


@workflow(name="th_two_hooks")
async def two_hooks(tok: str) -> list[Any]:
    first = await hook("first", on_created=keep(tok, "first"))
    second = await hook("second", on_created=keep(tok, "second"))
    return [first, second]


@workflow(name="th_typed_dataclass")
async def typed_dataclass(tok: str) -> list[Any]:
    value = await approval_hook(on_created=keep(tok, "approval"))
    return [
        type(value).__name__,
        value.approved,
        type(value.reviewer).__name__,
        value.reviewer.name,
        value.amount,
    ]


@workflow(name="th_typed_dict")
async def typed_dict(tok: str) -> list[Any]:
    value = await shipping_hook(on_created=keep(tok, "shipping"))
    return [type(value).__name__, value]


@workflow(name="th_typed_pydantic")
async def typed_pydantic(tok: str) -> list[Any]:
    value = await rating_hook(on_created=keep(tok, "rating"))
    return [type(value).__name__, value.score, value.comment]
