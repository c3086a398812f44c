"""The session: what the write scripts ask of a dialect, and the steps they take through it.

A script (``_scripts/``) runs on one :class:`Session`: inside one transaction of the dialect
when it writes (``SqlStorage._run``). It asks the session for two kinds of things:

- *Primitives*, which every dialect implements: run one statement of ``_statements/`` and hand
  back its rows (:meth:`Session.first`, :meth:`Session.all`) or how many rows it changed
  (:meth:`Session.execute`), insert rows (:meth:`Session.insert`), or run a statement built
  for one call (:meth:`Session.query`). Rows are read by position.
- *Steps*, the parts of a script that one dialect may do in another shape than the others: an
  append that advances its run and logs its events (:meth:`Session.advance_run`), a new run
  with its first events (:meth:`Session.insert_run`), a reopened run with its event
  (:meth:`Session.reopen_run`), a delivered hook and its run's signal (:meth:`Session.deliver`),
  a claim (:meth:`Session.claim`), a sweep of due runs (:meth:`Session.take_due`), a prune
  (:meth:`Session.delete_ended`) and an outside write that wakes runs (:meth:`Session.wake`).
  The bodies here run the shared statements one after the other, inside the script's
  transaction: what SQLite does. A dialect overrides a step where it can do the same in one
  statement (PostgreSQL: one round trip, with its notifications), building that statement from
  the same pieces, so that the script around it, and what the write means, stay written once.

What the defaults assume: the steps that run several write statements (:data:`COMPOSITE_STEPS`)
run inside the script's transaction, and :meth:`claim` and :meth:`take_due` pick their runs
and then update them, so nothing may come between the two (SQLite holds its write lock alone;
a dialect whose writers run side by side overrides them with ``FOR UPDATE SKIP LOCKED``). A
dialect that runs each statement in a transaction of its own (PostgreSQL) overrides every one
of :data:`COMPOSITE_STEPS` (a test checks it).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa

from pyworkflow.events import EventType
from pyworkflow.storage.records import AppendWrite, NewRun, RunRecord
from pyworkflow.storage.sql._decoding import RUN_COLUMN, claimed_runs
from pyworkflow.storage.sql._params import (
    appended_event_values,
    event_values,
    first_event_values,
    hook_values,
    spawned_run_values,
)
from pyworkflow.storage.sql._statements.appends import APPEND, APPEND_WITH_EFFECTS
from pyworkflow.storage.sql._statements.hooks import DELIVER_HOOK, INSERT_HOOK
from pyworkflow.storage.sql._statements.leases import (
    CLAIM_BY_IDS,
    claim_candidates_statement,
    take_due_statements,
)
from pyworkflow.storage.sql._statements.retention import DELETE_ENDED_RUNS, DELETE_RUN_ROWS
from pyworkflow.storage.sql._statements.runs import (
    CANCEL_CHILDREN,
    INSERT_EVENT,
    INSERT_RUN,
    REOPEN_FAILED_RUN,
    SIGNAL_RUN,
    insert_new_run,
)
from pyworkflow.storage.sql.schema import hooks

__all__ = ["COMPOSITE_STEPS", "Row", "Session"]

Row = Sequence[Any]
"""A row as a driver returns it, read by position (a tuple, a SQLAlchemy row, an asyncpg
Record)."""

COMPOSITE_STEPS = (
    "advance_run",
    "claim",
    "delete_ended",
    "deliver",
    "insert_run",
    "reopen_run",
    "take_due",
)
"""The steps whose default bodies run more than one write statement."""

# At most this many ids per ``IN (...)`` list: far below SQLite's limit on bound parameters.
_IDS_PER_STATEMENT = 500
_HOOK_RUN_ID = [column.name for column in hooks.c].index("run_id")


class Session(abc.ABC):
    """One dialect's connection, as a script sees it (see the module docstring)."""

    dialect: ClassVar[str]
    """The SQLAlchemy dialect's name (``"sqlite"``, ``"postgresql"``): whose ``INSERT ... ON
    CONFLICT`` the upserts use (``_terms.upsert``)."""

    retried: bool = False
    """The script runs again on a new connection because the previous one broke while a
    statement was in flight (PostgreSQL): a write may find its first attempt committed."""

    # --- primitives: one statement ------------------------------------------------------------

    @abc.abstractmethod
    async def first(self, statement: sa.Executable, params: Mapping[str, Any]) -> Row | None:
        """Run a statement of ``_statements/`` with ``params``; its first row, or None.

        The statement is a fixed shape (a module constant, or one cached per shape), so the
        dialect compiles it once and keeps it.
        """

    @abc.abstractmethod
    async def all(self, statement: sa.Executable, params: Mapping[str, Any]) -> list[Row]:
        """Like :meth:`first`, every row (none for a statement that returns none)."""

    @abc.abstractmethod
    async def execute(self, statement: sa.Executable, params: Mapping[str, Any]) -> int:
        """Like :meth:`first`, for a statement that returns no rows: how many rows it changed."""

    @abc.abstractmethod
    async def insert(self, statement: sa.Executable, rows: list[dict[str, Any]]) -> None:
        """Run an INSERT once per row (keyed by column), in one call to the driver."""

    @abc.abstractmethod
    async def query(self, statement: sa.Executable) -> list[Row]:
        """Every row of a statement built for this one call, its values written into it.

        Never kept compiled: a listing's text varies with its filters.
        """

    # --- steps: a dialect may override any of them --------------------------------------------

    async def advance_run(self, write: AppendWrite, params: dict[str, Any]) -> Row | None:
        """Apply an append's UPDATE and, if it went through, write everything that goes with it.

        ``params`` are ``_params.append_params``, and ``_params.effect_params`` when the append
        is not plain: then it also ends the run (cancel requests to its children, a signal to
        its parent), creates hooks or creates runs. Returns ``(signal_seq, cancel_requested,
        ...)``, or None when the seq or the lease was stale and nothing was written.
        """
        if "b_ends" not in params:  # a plain append: nearly all of them
            row = await self.first(APPEND, params)
            if row is not None and write.events:
                await self.insert(INSERT_EVENT, appended_event_values(write))
            return row
        row = await self.first(APPEND_WITH_EFFECTS, params)
        if row is None:
            return None
        if write.events:
            await self.insert(INSERT_EVENT, appended_event_values(write))
        # The side effects come before the new runs, as in one statement, whose parts see the
        # rows as they were before it: ``spawned_run_values`` stores a child that this very
        # append's end cancels with the request already made.
        if params["b_ends"]:
            reason = params["b_cancel_reason"]
            children = {"b_run_id": write.run_id, "b_now": write.now, "b_cancel_reason": reason}
            await self.wake(CANCEL_CHILDREN, children)
            parent_run_id = row[2]
            if params["b_signal_parent"] and parent_run_id is not None:
                await self.wake(SIGNAL_RUN, {"b_run_id": parent_run_id, "b_now": write.now})
        if write.hooks:
            await self.insert(INSERT_HOOK, hook_values(write))
        if write.new_runs:
            spawned, first_events = spawned_run_values(write)
            await self.insert(INSERT_RUN, spawned)
            await self.insert(INSERT_EVENT, first_events)
        return row

    async def insert_run(self, run: NewRun, record: RunRecord, values: dict[str, Any]) -> bool:
        """Insert a new run's row (``values``, by column) and its first events.

        False, writing nothing, when its idempotency key or its id is taken.
        """
        if not await self.execute(insert_new_run(self.dialect), values):
            return False
        await self.insert(INSERT_EVENT, first_event_values(run))
        return True

    async def reopen_run(self, run_id: str, now: float, payload: dict[str, Any]) -> Row | None:
        """Make a failed run pending and due, and log its WORKFLOW_RESUMED at its new seq.

        Returns the run's new row, or None when it has not failed (or does not exist).
        """
        row = await self.first(REOPEN_FAILED_RUN, {"b_run_id": run_id, "b_now": now})
        if row is not None:
            resumed = [(EventType.WORKFLOW_RESUMED, payload)]
            last_seq = row[RUN_COLUMN["last_seq"]]
            await self.insert(INSERT_EVENT, event_values(run_id, last_seq, resumed, now))
        return row

    async def deliver(self, params: dict[str, Any]) -> Row | None:
        """Store a hook's payload (``b_token_hash``, ``b_payload``, ``b_now``), signal its run.

        Returns the hook's new row, or None when it does not take the payload.
        """
        row = await self.first(DELIVER_HOOK, params)
        if row is not None:
            await self.wake(SIGNAL_RUN, {"b_run_id": row[_HOOK_RUN_ID], "b_now": params["b_now"]})
        return row

    async def claim(
        self, params: dict[str, Any], *, due_only: bool, suspects: bool | None
    ) -> list[RunRecord]:
        """Lease the runs of ``_params.claim_params``; their records, previous owners named.

        Picks the candidates with their lease owners, then leases them: two statements that
        nothing may come between (see the module docstring).
        """
        candidates = claim_candidates_statement(
            "b_names" in params, "b_ids" in params, due_only, suspects, "b_queues" in params
        )
        owners: dict[str, str | None] = {
            row[0]: row[1] for row in await self.all(candidates, params)
        }
        rows: list[Row] = []
        ids = list(owners)
        for start in range(0, len(ids), _IDS_PER_STATEMENT):
            chunk = {**params, "b_ids": ids[start : start + _IDS_PER_STATEMENT]}
            rows.extend(await self.all(CLAIM_BY_IDS, chunk))
        return claimed_runs(rows, owners)

    async def take_due(self, params: dict[str, Any]) -> list[Row]:
        """Set ``wake_at = b_until`` on up to ``b_limit`` runnable runs; their ``(id, wake_at)``.

        Picks the runs, then updates them: two statements that nothing may come between.
        """
        due, take = take_due_statements("b_names" in params)
        taken = await self.all(due, params)
        ids = [row[0] for row in taken]
        for start in range(0, len(ids), _IDS_PER_STATEMENT):
            chunk = {"b_ids": ids[start : start + _IDS_PER_STATEMENT], "b_until": params["b_until"]}
            await self.execute(take, chunk)
        return taken

    async def delete_ended(self, params: dict[str, Any]) -> list[str]:
        """Delete up to ``b_limit`` runs that ended before ``b_ended_before``, with their rows.

        Returns their ids.
        """
        gone = [row[0] for row in await self.all(DELETE_ENDED_RUNS, params)]
        for start in range(0, len(gone), _IDS_PER_STATEMENT):
            chunk = gone[start : start + _IDS_PER_STATEMENT]
            for statement in DELETE_RUN_ROWS:
                await self.execute(statement, {"b_ids": chunk})
        return gone

    async def wake(self, statement: sa.Update, params: dict[str, Any]) -> int:
        """Run an outside write that makes runs due; how many it made due.

        A dialect that can push changes announces each run here (PostgreSQL: ``NOTIFY``).
        """
        return await self.execute(statement, params)

    async def announce(self, run_id: str) -> None:
        """Tell listening workers that ``run_id`` has work for them now (a step offered).

        Nothing here: workers find it on their next poll. PostgreSQL sends a ``NOTIFY``.
        """
        return  # a hook a dialect may fill, not a duty: SQLite has nothing to say
