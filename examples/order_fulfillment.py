"""Order fulfilment: a durable workflow you can kill -9 and start again.

Run it, kill it mid-way (Ctrl-C, or ``kill -9`` from another terminal), run it again:

    python examples/order_fulfillment.py            # order ORD-1001
    python examples/order_fulfillment.py ORD-1002   # another order, another run

The run is started with a fixed idempotency key per order, so starting it again finds the same
run in ``order_fulfillment.db`` (next to this file) instead of creating a new one. The engine
replays the run from its event log: steps that completed are not executed again (their lines
are not printed again), the step that was in flight runs again, and the durable sleep keeps
its original wake-up time. Once the run has completed, running the script again just prints
the stored result. Delete ``order_fulfillment.db`` to start from scratch.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pyworkflow
from pyworkflow import get_step_context, sleep, step, workflow

DATABASE = Path(__file__).resolve().with_name("order_fulfillment.db")
LEASE_SECONDS = 3  # the fallback: a dead process is normally seen dead at once (its lock file)


def say(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')}  {message}", flush=True)


async def work(seconds: float) -> None:
    """Stand-in for a call to another system; long enough to kill the process mid-way."""
    await asyncio.sleep(seconds)


@step()
async def reserve_inventory(order: dict[str, Any]) -> str:
    await work(1.0)
    reservation = f"RES-{order['order_id']}"
    for item in order["items"]:
        say(f"reserved {item['qty']} x {item['sku']} ({reservation})")
    return reservation


@step(max_retries=5)
async def charge_payment(order: dict[str, Any], amount_cents: int) -> str:
    # The key is the same on every retry and after every crash, so a payment provider that
    # honours idempotency keys charges the customer once even if this step runs twice.
    key = get_step_context().idempotency_key
    await work(1.0)
    say(f"charged ${amount_cents / 100:.2f} to {order['email']} (idempotency key {key})")
    return f"PAY-{zlib.crc32(key.encode()):08X}"


@step()
async def request_pickup(order: dict[str, Any], reservation: str) -> None:
    await work(0.5)
    say(f"asked the warehouse to pick {reservation}; waiting for it (durable sleep)")


@step()
async def ship(order: dict[str, Any], reservation: str) -> str:
    await work(1.0)
    tracking = f"TRK-{order['order_id']}-{len(order['items'])}"
    say(f"shipped to {order['address']} (tracking {tracking})")
    return tracking


@step()
async def send_confirmation(order: dict[str, Any], tracking: str) -> None:
    await work(0.5)
    say(f"emailed {order['email']}: your order {order['order_id']} is on its way ({tracking})")


@workflow()
async def order_fulfillment(order: dict[str, Any]) -> dict[str, Any]:
    # Workflow code only orchestrates: no prints, I/O or clock reads here, because it runs
    # again on every replay. Everything with an effect lives in a step.
    amount = sum(item["qty"] * item["price_cents"] for item in order["items"])
    reservation = await reserve_inventory(order)
    payment = await charge_payment(order, amount)
    await request_pickup(order, reservation)
    await sleep("5s")  # wait for the warehouse: stored as a wake-up time, survives restarts
    tracking = await ship(order, reservation)
    await send_confirmation(order, tracking)
    return {
        "order_id": order["order_id"],
        "payment": payment,
        "tracking": tracking,
        "amount_cents": amount,
    }


async def main(order_id: str) -> None:
    pyworkflow.configure(storage=f"sqlite:///{DATABASE}", lease_seconds=LEASE_SECONDS)
    order = {
        "order_id": order_id,
        "email": "ada@example.com",
        "address": "12 Analytical Row, London",
        "items": [
            {"sku": "widget", "qty": 2, "price_cents": 1999},
            {"sku": "gizmo", "qty": 1, "price_cents": 4999},
        ],
    }
    began = time.time()
    try:
        run_id = await pyworkflow.start(
            order_fulfillment, order, idempotency_key=f"order-{order_id}"
        )
        run = await pyworkflow.get_workflow_run(run_id)
        if run.created_at.timestamp() >= began:
            print(
                f"Started run {run_id} for order {order_id} in {DATABASE.name}.\n"
                "Kill this process at any point and run it again: it continues where it "
                "stopped.",
                flush=True,
            )
        elif run.status.is_terminal:
            print(
                f"Order {order_id} was fulfilled earlier by run {run_id}; stored result:",
                flush=True,
            )
        else:
            print(
                f"Resuming run {run_id} for order {order_id} from {DATABASE.name} "
                f"(it was {run.status.value}): completed steps are not run again, and the "
                "killed process is seen dead at once (its lock file), so its run is taken "
                "over now.",
                flush=True,
            )
        result = await pyworkflow.get_workflow_result(run_id)
        print(f"Result: {result}", flush=True)
    finally:
        await pyworkflow.shutdown()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.WARNING, format="  %(asctime)s  [pyworkflow] %(message)s", datefmt="%H:%M:%S"
    )
    try:
        asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "ORD-1001"))
    except KeyboardInterrupt:
        print("\nInterrupted. Run the script again to continue the order.", flush=True)
        sys.exit(130)
