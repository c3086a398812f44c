"""The statements of hooks: created by their run's appends, delivered, expired, read.

A hook row takes one payload from an outside caller (:data:`DELIVER_HOOK`) or is expired by its
run's lease holder (:data:`EXPIRE_HOOK`); each is one conditional UPDATE, so whichever comes
first wins and the other sees the row as it stands.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pyworkflow.events import HookStatus
from pyworkflow.storage.sql._terms import LIVE, in_list, param
from pyworkflow.storage.sql.schema import hooks, runs

__all__ = [
    "DELIVER_HOOK",
    "EXPIRE_HOOK",
    "GET_HOOK",
    "GET_HOOK_OF_RUN",
    "HOOK_STATE",
    "INSERT_HOOK",
    "RECEIVED_OF_RUN",
    "list_hooks_statement",
]

INSERT_HOOK = sa.insert(hooks)
GET_HOOK = sa.select(hooks).where(hooks.c.token_hash == param("b_token_hash", sa.String))
GET_HOOK_OF_RUN = sa.select(hooks).where(
    hooks.c.run_id == param("b_run_id", sa.String),
    hooks.c.hook_id == param("b_hook_id", sa.String),
)
RECEIVED_OF_RUN = (
    sa.select(hooks)
    .where(
        hooks.c.run_id == param("b_run_id", sa.String),
        hooks.c.status == HookStatus.RECEIVED.value,
        in_list(hooks.c.hook_id, "b_hook_ids"),
    )
    .order_by(hooks.c.created_at.desc(), hooks.c.token_hash.desc())
)
"""The received hooks among those a run waits on (the engine's read at each wake): one
statement of fixed text, not one built per call."""

DELIVER_HOOK = (
    sa.update(hooks)
    .where(
        hooks.c.token_hash == param("b_token_hash", sa.String),
        hooks.c.status == HookStatus.WAITING.value,
        sa.or_(hooks.c.expires_at.is_(None), hooks.c.expires_at > param("b_now", sa.Float)),
        sa.select(runs.c.run_id)
        .where(runs.c.run_id == hooks.c.run_id, in_list(runs.c.status, values=LIVE))
        .exists(),
    )
    .values(
        status=HookStatus.RECEIVED.value,
        payload=param("b_payload", sa.Text),
        received_at=param("b_now", sa.Float),
    )
    .returning(*hooks.c)
)
"""Store a payload in hook ``b_token_hash`` if it is waiting, not expired, of a live run.

One conditional UPDATE decides between concurrent deliveries (PostgreSQL re-checks the row's
status after waiting for its lock), so exactly one wins; then ``runs.SIGNAL_RUN`` wakes the run.
No row back: nothing was written, and :data:`HOOK_STATE` says why."""

HOOK_STATE = (
    sa.select(hooks, runs.c.status.label("run_status"))
    .select_from(hooks.outerjoin(runs, runs.c.run_id == hooks.c.run_id))
    .where(hooks.c.token_hash == param("b_token_hash", sa.String))
)
"""Why a delivery was refused (a cold path): the hook's row and its run's status."""

EXPIRE_HOOK = (
    sa.update(hooks)
    .where(
        hooks.c.run_id == param("b_run_id", sa.String),
        hooks.c.hook_id == param("b_hook_id", sa.String),
        hooks.c.status == HookStatus.WAITING.value,
    )
    .values(status=HookStatus.EXPIRED.value)
    .returning(*hooks.c)
)
"""Expire a waiting hook; no row back when it was not waiting (then read it: a delivery may
have won) or does not exist."""


def list_hooks_statement(
    *,
    run_id: str | None,
    status: HookStatus | None,
    limit: int,
    hook_ids: list[str] | None = None,
) -> sa.Select[Any]:
    """Hooks newest first (``created_at``, then ``token_hash``, descending), filtered.

    Built per call, its values written into it, like ``runs.list_runs_statement``.
    """
    stmt = sa.select(hooks)
    if run_id is not None:
        stmt = stmt.where(hooks.c.run_id == run_id)
    if hook_ids is not None:
        stmt = stmt.where(hooks.c.hook_id.in_(hook_ids))
    if status is not None:
        stmt = stmt.where(hooks.c.status == HookStatus(status).value)
    return stmt.order_by(hooks.c.created_at.desc(), hooks.c.token_hash.desc()).limit(limit)
