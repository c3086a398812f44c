"""The workflow the schedules CLI tests schedule (imported by ``--module schedule_flows``)."""

from __future__ import annotations

from pyworkflow import workflow


@workflow(name="cli_sched_report")
async def report(region: str = "eu") -> str:
    return f"report {region}"
