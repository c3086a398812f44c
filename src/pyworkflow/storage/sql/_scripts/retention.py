"""The script of retention: deleting ended runs with every row that belongs to them."""

from __future__ import annotations

from pyworkflow.storage.sql._session import Session

__all__ = ["delete_ended_runs"]


async def delete_ended_runs(db: Session, *, ended_before: float, limit: int) -> list[str]:
    """Delete up to ``limit`` ended runs with ``completed_at < ended_before``, and their rows.

    Returns:
        The ids of the deleted runs (``Session.delete_ended``).
    """
    if limit <= 0:
        return []
    return await db.delete_ended({"b_ended_before": ended_before, "b_limit": limit})
