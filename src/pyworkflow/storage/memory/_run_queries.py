"""The run queries of MemoryStorage: listing runs and counting them, read from its dict.

A part of :class:`~pyworkflow.storage.memory.MemoryStorage` (a base of it), kept apart so that
each module holds one concern: the reads that the CLI, the dashboard and the client page and
count runs with. The rules are ``Storage.list_runs`` and the ``count_*`` methods, written as
plainly as possible.
"""

from __future__ import annotations

from collections.abc import Collection

from pyworkflow.events import RunStatus
from pyworkflow.storage.memory._copies import copy_tree
from pyworkflow.storage.records import RunCursor, RunRecord

__all__ = ["MemoryRunQueries"]


class MemoryRunQueries:
    """The run listing and counting methods of the Storage protocol in memory (a base)."""

    _runs: dict[str, RunRecord]

    async def list_runs(
        self,
        *,
        statuses: Collection[RunStatus] | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        before: RunCursor | None = None,
        parent_run_id: str | None = None,
        schedule_id: str | None = None,
        run_id_prefix: str | None = None,
        tags: Collection[str] | None = None,
    ) -> list[RunRecord]:
        """Runs newest first by ``(created_at, run_id)``, filtered, one page of ``limit``.

        Args:
            statuses: keep runs in one of these statuses (None: any).
            workflow_name: keep runs of this workflow (None: any).
            limit: the page size.
            before: the cursor of the last run of the previous page; the page starts after it.
            parent_run_id: keep the children of this run (None: any run).
            schedule_id: keep the runs this schedule started (None: any run).
            run_id_prefix: keep the runs whose id starts with it (None: any run).
            tags: keep runs that carry every one of these tags.
        """
        wanted = None if statuses is None else set(statuses)
        rows = [
            r
            for r in self._runs.values()
            if (wanted is None or r.status in wanted)
            and (workflow_name is None or r.workflow_name == workflow_name)
            and (parent_run_id is None or r.parent_run_id == parent_run_id)
            and (schedule_id is None or r.schedule_id == schedule_id)
            and (run_id_prefix is None or r.run_id.startswith(run_id_prefix))
            and all(t in r.tags for t in tags or ())
            and (before is None or (r.created_at, r.run_id) < (before.created_at, before.run_id))
        ]
        rows.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
        return [copy_tree(r) for r in rows[: max(limit, 0)]]

    async def count_runs(
        self, *, workflow_name: str | None = None, since: float | None = None
    ) -> dict[RunStatus, int]:
        """How many runs are in each status (of ``workflow_name``, created since ``since``)."""
        counts: dict[RunStatus, int] = {}
        for r in self._runs.values():
            if (since is None or r.created_at >= since) and (
                workflow_name is None or r.workflow_name == workflow_name
            ):
                counts[r.status] = counts.get(r.status, 0) + 1
        return counts

    async def count_workflow_runs(self, *, since: float | None = None) -> dict[str, int]:
        """How many runs each workflow has (created since ``since``)."""
        counts: dict[str, int] = {}
        for r in self._runs.values():
            if since is None or r.created_at >= since:
                counts[r.workflow_name] = counts.get(r.workflow_name, 0) + 1
        return counts

    async def count_workflow_statuses(
        self, *, since: float | None = None
    ) -> dict[str, dict[RunStatus, int]]:
        """How many runs each workflow has in each status (created since ``since``)."""
        counts: dict[str, dict[RunStatus, int]] = {}
        for r in self._runs.values():
            if since is None or r.created_at >= since:
                of = counts.setdefault(r.workflow_name, {})
                of[r.status] = of.get(r.status, 0) + 1
        return counts
