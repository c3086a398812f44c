"""The script of retention: deleting ended runs with every row that belongs to them."""

from __future__ import annotations

from pyworkflow.storage.sql._session import Session
from pyworkflow.storage.sql._statements.stream_rows import HAND_ON_CONTINUED

__all__ = ["delete_ended_runs"]


async def delete_ended_runs(db: Session, *, ended_before: float, limit: int) -> list[str]:
    """Delete up to ``limit`` ended runs with ``completed_at < ended_before``, and their rows.

    Stream runs driven by runs that continued as new go to the successors first (see
    ``HAND_ON_CONTINUED``); the rest of a deleted run's stream runs go with it.

    Returns:
        The ids of the deleted runs (``Session.delete_ended``).
    """
    if limit <= 0:
        return []
    await db.execute(HAND_ON_CONTINUED, {"b_ended_before": ended_before})
    return await db.delete_ended({"b_ended_before": ended_before, "b_limit": limit})
