"""The script of a stream run's end: its row and its open subscriptions, in one transaction."""

from __future__ import annotations

from pyworkflow.storage.sql._session import Session
from pyworkflow.storage.sql._statements.stream_ends import END_STREAM_RUN, END_SUBSCRIPTIONS
from pyworkflow.storage.streams import check_end_status

__all__ = ["end_stream_run"]


async def end_stream_run(
    db: Session, stream_run_id: str, *, run_id: str, status: str, detail: str, now: float
) -> bool:
    """End the stream run ``run_id`` drives, cancelled or failed; see ``StreamStore``."""
    check_end_status(status)
    params = {"b_stream_run_id": stream_run_id, "b_run_id": run_id, "b_now": now}
    # The UPDATE of its row comes first: it holds the row against emitters and takers (see
    # _statements/streams.py), and it changes nothing for a stream run that is not ours to end.
    if await db.first(END_STREAM_RUN, {**params, "b_status": status}) is None:
        return False
    await db.execute(
        END_SUBSCRIPTIONS, {"b_stream_run_id": stream_run_id, "b_detail": detail, "b_now": now}
    )
    return True
