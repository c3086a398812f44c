"""PostgreSQL's writes that reach other rows than their run's, each in one statement.

An append may create hooks and runs, and an append that ends its run cancels the run's
``"cancel"`` children and signals its parent (``protocol.py``); a delivered hook signals its
run. As in ``_one_trip.py``, each of these is one statement of data-modifying CTEs (one
round trip, one commit) built on the shared statements of ``storage/sql/_statements/``, and
wakes workers with ``runnable <run_id>`` for each run it made due. They are PostgreSQL's
``Session.advance_run`` and ``Session.deliver`` (``_session.py``), and its group commit of
appends that end their runs (``_appends.py``).

What to watch for: the parts of one statement see the rows as they were before it, and
PostgreSQL leaves it undefined which change holds when two parts change one row. So no
statement here changes a row twice: a run is neither its own parent nor its own child, a
batch leaves out (for a statement of their own) the writes of a parent and a child of which
one ends, and the changes to one relative are summed into one row change.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pyworkflow.storage.postgres._one_trip import (
    BATCH_APPEND_COLUMNS,
    json_rows,
    log_batch_events,
    log_events_if,
    notify,
)
from pyworkflow.storage.records import AppendWrite
from pyworkflow.storage.sql._params import hook_values, spawned_run_values
from pyworkflow.storage.sql._statements.appends import APPEND_WITH_EFFECTS, append_update
from pyworkflow.storage.sql._statements.hooks import DELIVER_HOOK
from pyworkflow.storage.sql._statements.runs import (
    CANCEL_CHILDREN,
    cancelled_with_parent,
    outside_write,
)
from pyworkflow.storage.sql.schema import events, hooks, runs

__all__ = [
    "APPEND_BATCH_ENDING",
    "DELIVER_HOOK_NOTIFYING",
    "ENDING_COLUMNS",
    "append_with_effects",
    "effect_arrays",
]


def _p(name: str, type_: Any) -> Any:
    return sa.bindparam(name, type_=type_)


def _runnable_count(run_ids: sa.Select[Any] | sa.CompoundSelect[Any]) -> Any:
    """``runnable <run_id>`` for each id; evaluated once per statement (an InitPlan)."""
    woken = run_ids.subquery("woken")
    return sa.select(sa.func.count(notify("runnable", woken.c[0]))).scalar_subquery()


# --- one append with its side effects -----------------------------------------------------------


def _array_insert(table: sa.Table, prefix: str, guard: sa.Exists) -> sa.CTE:
    """Insert rows given as one array per column (``<prefix><column>``) if ``guard`` holds."""
    names = [column.name for column in table.c]
    given = (
        sa.func.unnest(*(_p(f"{prefix}{c.name}", postgresql.ARRAY(c.type)) for c in table.c))
        .table_valued(*names)
        .render_derived(name=f"{prefix}rows")
    )
    inserted = sa.insert(table).from_select(names, sa.select(*given.c).where(guard))
    return inserted.returning(table.c[0]).cte(f"{prefix}inserted")


def _column_arrays(table: sa.Table, prefix: str, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {f"{prefix}{c.name}": [row[c.name] for row in rows] for c in table.c}


@functools.cache
def append_with_effects(with_hooks: bool, with_runs: bool) -> sa.Select[Any]:
    """``APPEND_ONE`` for an append that is not plain (``_params.plain_append``), per shape.

    In the same statement, when the append is accepted: its hooks (``with_hooks``), its new
    runs and their first events (``with_runs``), and, when it ends the run (``b_ends``), the
    cancel request to its live ``"cancel"`` children and, unless it continued as new
    (``b_signal_parent``), the signal to its live parent. Parameters: those of ``APPEND_ONE``,
    ``_params.effect_params`` and :func:`effect_arrays`. A child created here is not among the
    children it cancels (the statement does not see it): ``_params.spawned_run_values`` stores it
    cancelled already. No row back: stale seq or lease, nothing written.
    """
    advanced = APPEND_WITH_EFFECTS.cte("advanced")
    accepted = sa.select(advanced.c.signal_seq).exists()
    cancelled = (
        CANCEL_CHILDREN.where(_p("b_ends", sa.Boolean), accepted)
        .returning(runs.c.run_id)
        .cte("cancelled")
    )
    parent = sa.select(advanced.c.parent_run_id).where(_p("b_signal_parent", sa.Boolean))
    signalled = outside_write(runs.c.run_id.in_(parent)).returning(runs.c.run_id).cte("signalled")
    ctes = [log_events_if(advanced, _p("b_run_id", sa.String))]
    woken: list[sa.Select[Any]] = [sa.select(cancelled.c.run_id), sa.select(signalled.c.run_id)]
    if with_hooks:
        ctes.append(_array_insert(hooks, "b_hk_", accepted))
    if with_runs:
        spawned = _array_insert(runs, "b_nr_", accepted)
        ctes.append(_array_insert(events, "b_nre_", accepted))
        woken.append(sa.select(spawned.c.run_id))
    return sa.select(
        advanced.c.signal_seq,
        advanced.c.cancel_requested,
        sa.select(notify("ended", _p("b_run_id", sa.String)))
        .where(_p("b_notify", sa.Boolean))
        .scalar_subquery()
        .label("ended"),
        _runnable_count(sa.union_all(*woken)).label("woken"),
    ).add_cte(*ctes)


def effect_arrays(write: AppendWrite) -> dict[str, Any]:
    """The array parameters of :func:`append_with_effects`: hooks, new runs, their events."""
    spawned, first_events = spawned_run_values(write)
    return {
        **_column_arrays(hooks, "b_hk_", hook_values(write)),
        **_column_arrays(runs, "b_nr_", spawned),
        **_column_arrays(events, "b_nre_", first_events),
    }


# --- group commit of ending appends -------------------------------------------------------------

ENDING_COLUMNS: dict[str, Any] = {**BATCH_APPEND_COLUMNS, "b_signal_parent": sa.Boolean}
"""The keys of a write in the ``b_writes`` of :data:`APPEND_BATCH_ENDING`: ``b_notify`` marks the
writes that end their runs, ``b_signal_parent`` those whose end signals their parent."""

_w = json_rows("b_writes", ENDING_COLUMNS, "w")
_parent = runs.c.parent_run_id
_ended = (
    append_update(lambda name: _w.c[f"b_{name}"])
    .where(
        # Left for a statement of its own, so that no row is changed twice: a write whose
        # parent ends in the batch (``b_ending_ids``), and an ending whose parent is in it.
        sa.or_(
            _parent.is_(None),
            sa.not_(
                sa.or_(
                    _parent == sa.any_(_p("b_ending_ids", postgresql.ARRAY(sa.String))),
                    sa.and_(
                        _w.c.b_notify,
                        _parent == sa.any_(_p("b_run_ids", postgresql.ARRAY(sa.String))),
                    ),
                )
            ),
        )
    )
    .returning(
        runs.c.run_id,
        runs.c.signal_seq,
        runs.c.cancel_requested,
        runs.c.parent_run_id,
        _w.c.b_notify.label("notify"),
        _w.c.b_signal_parent.label("signal_parent"),
        _w.c.b_now.label("now"),
    )
    .cte("advanced")
)
_c = runs.alias("c")
_cancels = (
    sa.select(
        _c.c.run_id.label("target"),
        sa.true().label("cancel"),
        sa.func.concat("parent run ", _ended.c.run_id, " ended").label("reason"),
        _ended.c.now.label("now"),
    )
    .select_from(_ended.join(_c, _c.c.parent_run_id == _ended.c.run_id))
    .where(_ended.c.notify, cancelled_with_parent(_c.c.parent_close_policy))
)
_signals = sa.select(
    _ended.c.parent_run_id, sa.false(), sa.null().cast(sa.Text), _ended.c.now
).where(_ended.c.signal_parent, _ended.c.parent_run_id.is_not(None))
_relatives = sa.union_all(_cancels, _signals).subquery("relatives")
# One row per relative: two children ending signal their parent twice, in one row change.
_effects = (
    sa.select(
        _relatives.c.target,
        sa.func.count().label("signals"),
        sa.func.bool_or(_relatives.c.cancel).label("cancel"),
        sa.func.max(_relatives.c.reason).label("reason"),
        sa.func.max(_relatives.c.now).label("now"),
    )
    .group_by(_relatives.c.target)
    .cte("effects")
)
_touched = (
    outside_write(
        runs.c.run_id == _effects.c.target,
        now=_effects.c.now,
        signals=_effects.c.signals,
        cancel_requested=sa.or_(runs.c.cancel_requested, _effects.c.cancel),
        cancel_reason=sa.case(
            (sa.and_(_effects.c.cancel, sa.not_(runs.c.cancel_requested)), _effects.c.reason),
            else_=runs.c.cancel_reason,
        ),
    )
    .returning(runs.c.run_id)
    .cte("touched")
)

APPEND_BATCH_ENDING = sa.select(
    _ended.c.run_id,
    _ended.c.signal_seq,
    _ended.c.cancel_requested,
    sa.case((_ended.c.notify, notify("ended", _ended.c.run_id)), else_=sa.null()).label("notified"),
    _runnable_count(sa.select(_touched.c.run_id)).label("woken"),
).add_cte(log_batch_events(_ended))
"""``_one_trip.APPEND_BATCH`` for a batch in which some appends end their runs (none creates
hooks or runs), with what ``append_with_effects`` does for each ending: cancel requests to its
children, a signal to its parent. The writes: ``b_writes`` (keys :data:`ENDING_COLUMNS`), their
events ``b_events``. A batch of plain appends only keeps ``APPEND_BATCH``, which does less.

Also two arrays: ``b_run_ids``, the runs of the batch, and ``b_ending_ids``, those it ends. A
row comes back for each write that went through; a write without one was refused (stale) or left
out because its run's parent is in the batch and one of the two ends: send it alone, after."""


# --- delivering a hook --------------------------------------------------------------------------

_delivered = DELIVER_HOOK.cte("delivered")
_hook_signalled = (
    outside_write(runs.c.run_id.in_(sa.select(_delivered.c.run_id)))
    .returning(runs.c.run_id)
    .cte("signalled")
)

DELIVER_HOOK_NOTIFYING = sa.select(
    *_delivered.c, _runnable_count(sa.select(_hook_signalled.c.run_id)).label("notified")
)
"""``hooks.DELIVER_HOOK`` and ``runs.SIGNAL_RUN`` of its run, with a wake-up for
workers, in one statement; the hook's new row comes back (and a last column), or no row.

The run is signalled only if it is still live when its row is locked: a run that ended after
the statement's snapshot keeps ``wake_at`` NULL, and the payload it never saw was delivered
just before its end, as far as anyone can tell."""
