"""What a Celery worker's processes hold: one event loop each, connections of their own.

Steps run on one long-lived event loop per pool process (not a new loop per task), and every
process opens its own database connections after Celery forked it: no socket to PostgreSQL is
shared between the worker's main process (its sweeper) and its pool processes, as an
inherited one would be.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import psutil
import pytest
from celery_flows import loops
from celery_workers import Deployment

import pyworkflow

pytestmark = pytest.mark.slow


def _postgres_sockets(pid: int) -> set[tuple[str, int]]:
    """The local ends of the TCP connections to PostgreSQL that process ``pid`` holds."""
    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == 5432
    }


async def test_each_pool_process_has_one_loop_and_connections_of_its_own(
    deployment: Callable[..., Deployment], client: Callable[[Deployment], None]
) -> None:
    deployed = deployment(storage="postgres", broker="redis")
    worker = deployed.workers.start(concurrency=2)
    client(deployed)

    ran = [step for _ in range(4) for step in await pyworkflow.run(loops, 5)]

    loops_by_pid: dict[int, set[int]] = collections.defaultdict(set)
    for pid, loop_id in ran:
        loops_by_pid[pid].add(loop_id)
    pool = set(worker.pool_pids())
    assert set(loops_by_pid) <= pool, deployed.context()
    assert all(len(ids) == 1 for ids in loops_by_pid.values()), loops_by_pid

    held = {pid: _postgres_sockets(pid) for pid in [worker.pid, *pool]}
    assert held[worker.pid], "the sweeper in the main process holds no connection"
    for pid in loops_by_pid:
        assert held[pid], f"pool process {pid} ran steps without a connection of its own"
    owners = collections.Counter(sock for socks in held.values() for sock in socks)
    shared = [sock for sock, n in owners.items() if n > 1]
    assert not shared, f"sockets held by more than one process (inherited): {held}"
