"""Three representative workflows whose recorded event logs are kept under tests/golden/.

Change these only together with a deliberate re-recording (``pytest tests/golden
--record-golden``): the recorded logs stand for runs that are in flight in users' databases,
and today's code must still replay them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyworkflow import (
    FatalError,
    get_step_context,
    now,
    random,
    sleep,
    step,
    uuid4,
    workflow,
)

# Flipped by the recorder between the failure and the resume of ``golden_resume``.
FLAGS: dict[str, bool] = {"warehouse_open": False}


# --- 1. a sequence with retries ------------------------------------------------------------------


@step(name="golden_fetch_order")
async def fetch_order(order_id: str) -> dict[str, Any]:
    return {"id": order_id, "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]}


@step(name="golden_reserve", max_retries=3, retry_delay=0.01)
async def reserve(order: dict[str, Any]) -> str:
    if get_step_context().attempt < 3:
        raise ConnectionError("inventory service unavailable")
    return f"reservation-{order['id']}"


@step(name="golden_confirm")
async def confirm(order: dict[str, Any], reservation: str) -> dict[str, Any]:
    return {
        "order": order["id"],
        "reservation": reservation,
        "units": sum(i["qty"] for i in order["items"]),
    }


@workflow(name="golden_sequence")
async def golden_sequence(order_id: str) -> dict[str, Any]:
    order = await fetch_order(order_id)
    reservation = await reserve(order)
    return await confirm(order, reservation)


# --- 2. gather, sleep, side effects --------------------------------------------------------------


@step(name="golden_price")
async def price(sku: str, delay: float) -> float:
    await asyncio.sleep(delay)
    return {"a": 2.5, "b": 4.0, "c": 1.25}[sku]


@workflow(name="golden_gather_sleep")
async def golden_gather_sleep(skus: list[str]) -> dict[str, Any]:
    started = now()
    batch = uuid4()
    prices = await asyncio.gather(*(price(s, 0.02 * (len(skus) - i)) for i, s in enumerate(skus)))
    await sleep("50ms")
    jitter = random()
    more = await asyncio.gather(price(skus[0], 0), price(skus[-1], 0.01))
    return {
        "batch": str(batch),
        "started": started.isoformat(),
        "total": sum(prices),
        "again": list(more),
        "jitter": jitter,
    }


# --- 3. a caught step failure, an uncaught one, and a resume -------------------------------------


@step(name="golden_charge")
async def charge(amount: int) -> str:
    raise FatalError(f"card declined for {amount}")


@step(name="golden_invoice")
async def invoice(amount: int) -> str:
    return f"invoice for {amount}"


@step(name="golden_ship", max_retries=1, retry_delay=0.01)
async def ship(amount: int) -> str:
    if not FLAGS["warehouse_open"]:
        raise RuntimeError("warehouse closed")
    return f"shipped {amount}"


@workflow(name="golden_resume")
async def golden_resume(amount: int) -> list[str]:
    try:
        paid = await charge(amount)
    except FatalError as exc:
        paid = await invoice(amount) + f" ({exc})"
    return [paid, await ship(amount)]
