"""A workflow declared with ``@scheduled_workflow``, imported by workers only.

Not by the test process: a declared schedule is process-wide (``activate_scheduled_workflows``
stores every one declared), and other tests of that process store their own.
"""

from __future__ import annotations

from pyworkflow import OverlapPolicy, scheduled_workflow, step


@step()
async def seed_collect() -> dict[str, float]:
    """Collect a metric (nothing real)."""
    return {"cpu": 42.0}


@scheduled_workflow(interval="2s", overlap_policy=OverlapPolicy.SKIP, schedule_id="seed-metrics")
async def seed_metrics() -> dict[str, float]:
    """Collect metrics every 2 s, skipping a slot while the last run still goes."""
    return await seed_collect()
