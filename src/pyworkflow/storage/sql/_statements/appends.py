"""The statement of an append: the conditional UPDATE that advances a run by one turn.

Its events go in with ``runs.INSERT_EVENT``; what an append that ends its run does to other
runs is ``runs.CANCEL_CHILDREN`` and ``runs.SIGNAL_RUN``. PostgreSQL composes all of these into
one statement per write and per batch of writes (``storage/postgres/``), from
:func:`append_update`, so the conditions are written once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from pyworkflow.storage.sql._terms import param
from pyworkflow.storage.sql.schema import runs

__all__ = ["APPEND", "APPEND_FIELDS", "APPEND_WITH_EFFECTS", "append_update"]

APPEND_FIELDS: dict[str, Any] = {
    "run_id": sa.String,
    "expected": sa.Integer,
    "owner": sa.String,
    "last_seq": sa.Integer,
    "status": sa.String,
    "now": sa.Float,
    "check_signals": sa.Boolean,
    "signals_seen": sa.Integer,
    "wake_at": sa.Float,
    "new_owner": sa.String,
    "lease_expires_at": sa.Float,
    "result": sa.Text,
    "error": sa.Text,
    "completed_at": sa.Float,
    "progressed": sa.Boolean,
}
"""The values of one append (bound as ``b_<name>``; see ``_params.append_params``), their types."""


def append_update(value: Callable[[str], Any], *, continues: bool = False) -> sa.Update:
    """The UPDATE of an append, with ``value(name)`` the SQL for each of :data:`APPEND_FIELDS`.

    Written once for every shape: one write's bound parameters (:data:`APPEND`), or a column of
    a batch of writes (PostgreSQL's group commit, ``postgres/_one_trip.APPEND_BATCH``). With
    ``continues`` it also sets ``continued_to`` from ``value("continued_to")`` (NULL keeps it),
    for the appends that start a run (:data:`APPEND_WITH_EFFECTS`); plain appends leave that
    column alone, so their statement stays as small as it was.
    """
    # Invariant (DESIGN §2.3): the append is refused unless the writer saw the run's last seq
    # and holds its lease; one conditional UPDATE decides, so two writers cannot both pass.
    update = (
        sa.update(runs)
        .where(
            runs.c.run_id == value("run_id"),
            runs.c.last_seq == value("expected"),
            runs.c.lease_owner == value("owner"),
        )
        .values(
            last_seq=value("last_seq"),
            status=sa.func.coalesce(value("status"), runs.c.status),
            updated_at=value("now"),
            # A writer that lets go of the run without having seen the latest outside signal
            # leaves it due at once, so the signal is not lost to the race.
            wake_at=sa.case(
                (
                    sa.and_(value("check_signals"), runs.c.signal_seq > value("signals_seen")),
                    value("now"),
                ),
                else_=value("wake_at"),
            ),
            lease_owner=value("new_owner"),
            lease_expires_at=value("lease_expires_at"),
            result=sa.func.coalesce(value("result"), runs.c.result),
            error=sa.func.coalesce(value("error"), runs.c.error),
            completed_at=sa.func.coalesce(value("completed_at"), runs.c.completed_at),
            recovery_count=sa.case((value("progressed"), 0), else_=runs.c.recovery_count),
        )
    )
    if continues:
        update = update.values(
            continued_to=sa.func.coalesce(value("continued_to"), runs.c.continued_to)
        )
    return update


APPEND = append_update(lambda name: param(f"b_{name}", APPEND_FIELDS[name])).returning(
    runs.c.signal_seq, runs.c.cancel_requested
)
"""Advance run ``b_run_id`` by one turn; ``(signal_seq, cancel_requested)`` comes back, or no
row: the seq or the lease was stale, and nothing was written."""

APPEND_WITH_EFFECTS = append_update(
    lambda name: param(f"b_{name}", APPEND_FIELDS.get(name, sa.String)), continues=True
).returning(runs.c.signal_seq, runs.c.cancel_requested, runs.c.parent_run_id)
""":data:`APPEND` for an append that creates hooks or runs or ends its run
(``_params.plain_append`` tells): it also sets ``continued_to`` (``b_continued_to``) and returns
the run's ``parent_run_id``, for the side effects its end has (``Session.advance_run``)."""
