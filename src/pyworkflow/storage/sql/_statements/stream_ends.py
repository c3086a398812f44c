"""The statements of a stream run's end (``StreamStore.end_stream_run``) and of its refusals.

A stream run that has ended (``completed``, ``cancelled``, ``failed``) takes no more signals:
:data:`OPEN` is the condition every write that adds to one states.
"""

from __future__ import annotations

import sqlalchemy as sa

from pyworkflow.events import StreamStepStatus
from pyworkflow.storage.sql._terms import in_list, param
from pyworkflow.storage.sql.schema import stream_runs, stream_subscriptions
from pyworkflow.storage.streams import ENDED_STATUSES

__all__ = ["END_STREAM_RUN", "END_SUBSCRIPTIONS", "OPEN"]

OPEN = sa.not_(in_list(stream_runs.c.status, values=ENDED_STATUSES))
"""The stream run has not ended."""

END_STREAM_RUN = (
    sa.update(stream_runs)
    .where(
        stream_runs.c.stream_run_id == param("b_stream_run_id", sa.String),
        stream_runs.c.run_id == param("b_run_id", sa.String),
        OPEN,
    )
    .values(
        status=param("b_status", sa.String), wait_hook=None, updated_at=param("b_now", sa.Float)
    )
    .returning(stream_runs.c.stream_run_id)
)
"""End a stream run that ``b_run_id`` drives and that has not ended; its id, or no row."""

_OPEN_STEPS = tuple(sorted(s.value for s in StreamStepStatus if not s.is_terminal))

END_SUBSCRIPTIONS = (
    sa.update(stream_subscriptions)
    .where(
        stream_subscriptions.c.stream_run_id == param("b_stream_run_id", sa.String),
        in_list(stream_subscriptions.c.status, values=_OPEN_STEPS),
    )
    .values(
        status=StreamStepStatus.CANCELLED.value,
        detail=param("b_detail", sa.Text),
        resume_signals=None,
        updated_at=param("b_now", sa.Float),
    )
)
"""Cancel every subscription of the stream run that has not ended, with the reason."""
