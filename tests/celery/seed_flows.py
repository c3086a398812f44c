"""Workflows written the way the pyworkflow documentation's Celery examples write them.

Imported by the workers and the client of ``test_celery_seed_spellings.py``: bare decorator
options they use (``tags``, ``recover_on_worker_loss``, ``max_recovery_attempts``,
``context_class``, ``@step(name=..., metadata=...)``), a step context whose fields have
mutable defaults as pydantic-style classes write them, and errors imported from
``pyworkflow.core.exceptions``.
"""

from __future__ import annotations

import os

from pyworkflow import StepContext, get_step_context, set_step_context, step, workflow
from pyworkflow.core.exceptions import FatalError


class SeedOrderContext(StepContext):
    """The context the order workflow sets for its steps."""

    tenant: str = ""
    flags: dict[str, bool] = {}  # noqa: RUF012 (their spelling: each instance gets a copy)


@step(name="seed_validate", metadata={"team": "orders"})
async def validate(order_id: str, amount: float) -> dict[str, object]:
    """Refuse a non-positive amount for good; else where the step ran and what it read."""
    if amount <= 0:
        raise FatalError(f"amount must be positive, not {amount}")
    ctx = get_step_context()
    assert isinstance(ctx, SeedOrderContext)
    return {
        "order_id": order_id,
        "tenant": ctx.tenant,
        "flags": ctx.flags,
        "pid": os.getpid(),
    }


# A bare @step, as their examples write it; a name of its own, as the suite's processes
# share one registry (the docs' pages define a `charge` step too).
@step()
async def charge_seed_order(order: dict[str, object], amount: float) -> dict[str, object]:
    """Charge the order (nothing real), noting the pid of the process that ran it."""
    return {**order, "charged": amount, "charge_pid": os.getpid()}


@workflow(
    tags=["celery", "durable"],
    context_class=SeedOrderContext,
    recover_on_worker_loss=True,
    max_recovery_attempts=5,
)
async def seed_order(order_id: str, amount: float) -> dict[str, object]:
    """Validate and charge an order, with the tenant in the step context."""
    await set_step_context(SeedOrderContext(tenant="acme", flags={"express": True}))
    order = await validate(order_id, amount)
    return await charge_seed_order(order, amount)
