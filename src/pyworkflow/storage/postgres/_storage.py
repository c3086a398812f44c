"""PostgreSQL storage: asyncpg, one round trip per write, SKIP LOCKED claims, LISTEN/NOTIFY.

The Storage protocol on PostgreSQL. Its parts, each in a module of its own: URL options and
schema creation under an advisory lock (``_pg_schema.py``), the pool, reconnection and error
translation (``_pg_connections.py``), group commit (``_pg_group.py``) of appends
(``_pg_batch.py``) and run creations (``_pg_creates.py``), LISTEN (``_pg_listen.py``), the hook
methods (``_pg_hooks.py``) and the step-lease methods (``_pg_steps.py``). The statements are
the shared ones of ``statements.py`` and ``_step_statements.py`` (composed into single
statements by ``_pg_statements.py``, and by ``_pg_effects.py`` for the writes that reach other
runs' rows), compiled for asyncpg by ``_pg_query.py``; rows and records are converted by
``rows.py``, as for SQLite.

Concurrency: many workers, on many machines, share one database. Every write is one statement
in its own implicit transaction; the conditional UPDATEs of ``statements.py`` decide races
(PostgreSQL re-checks a row's condition after waiting for its lock), and claims lock candidates
with ``FOR UPDATE SKIP LOCKED``, so two workers never claim one run and never wait on each
other.

Reconnection: a statement that fails because the connection is gone (the server restarted) is
retried on a fresh connection, with backoff, for up to ``reconnect_timeout`` seconds. A retried
write whose first attempt did commit is recognised (its run id exists; its run's row already
shows it) and reported as done, not as a conflict.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import asyncpg

from pyworkflow.events import EventType, RunStatus
from pyworkflow.storage.postgres import _one_trip as one_trip
from pyworkflow.storage.postgres._connections import PgConnections
from pyworkflow.storage.postgres._hooks import PgHookMethods
from pyworkflow.storage.postgres._listen import Subscriber
from pyworkflow.storage.postgres._query import PgQuery, compile_once_off
from pyworkflow.storage.postgres._settings import PgSettings, parse_url
from pyworkflow.storage.postgres._steps import PgStepMethods
from pyworkflow.storage.records import (
    AppendResult,
    AppendWrite,
    EventRecord,
    NewRun,
    RunCursor,
    RunRecord,
)
from pyworkflow.storage.sql._decoding import events_from_rows, run_from_row
from pyworkflow.storage.sql._rows import (
    claim_params,
    claimed_runs,
    earliest_wake,
    event_values,
    reopen_refused,
    taken_ids,
)
from pyworkflow.storage.sql._statements import (
    GET_RUN,
    LOAD_EVENTS,
    RENEW_LEASES,
    RUN_STATE,
    claim_runs_statement,
    list_runs_statement,
    next_wake_at_statements,
)

__all__ = ["PostgresStorage"]

# Compiled once, at import: every call only lays out parameters.
_REQUEST_CANCEL = PgQuery(one_trip.REQUEST_CANCEL_NOTIFYING)
_RELEASE_RUNS = PgQuery(one_trip.RELEASE_RUNS_NOTIFYING)
_REOPEN = PgQuery(one_trip.REOPEN_ONE_TRIP)
_PRUNE = PgQuery(one_trip.PRUNE_ONE_TRIP)
_GET_RUN = PgQuery(GET_RUN.stmt)
_RUN_STATE = PgQuery(RUN_STATE)
_LOAD_EVENTS = PgQuery(LOAD_EVENTS.stmt)
_RENEW_LEASES = PgQuery(RENEW_LEASES)
_CLAIM = {
    (by_names, by_ids, due_only, suspects): PgQuery(
        claim_runs_statement(by_names, by_ids, due_only=due_only, suspects=suspects)
    )
    for by_names in (False, True)
    for by_ids in (False, True)
    for due_only in (False, True)
    for suspects in (None, False, True)
}
_TAKE_DUE = {by_names: PgQuery(one_trip.take_due_one_trip(by_names)) for by_names in (False, True)}
_NEXT_WAKE = {
    by_names: tuple(map(PgQuery, next_wake_at_statements(by_names))) for by_names in (False, True)
}


class PostgresStorage(PgHookMethods, PgStepMethods):
    """Storage in a PostgreSQL database, shared by any number of workers on any machines.

    Args:
        url: ``postgresql://user:password@host:port/database`` (also ``postgresql+asyncpg://``
            and ``postgres://``). Query options, also accepted as arguments: ``pool_size``,
            ``statement_timeout`` (a duration: ``30s``), ``create`` and ``auto_upgrade``
            (``true``/``false``), ``schema``; any other option goes to asyncpg
            (``sslmode=require``, say).
        pool_size: connections this process keeps open at most (default 10).
        statement_timeout: the server cancels a statement running longer (default: none).
        create: create the database, when missing, and the schema (default True).
        auto_upgrade: migrate an older schema on open (default True); when False, an older
            schema raises SchemaVersionError naming ``pyworkflow db upgrade``.
        schema: keep pyworkflow's tables in this PostgreSQL schema (created when missing)
            instead of the user's default one.
        reconnect_timeout: how long a statement keeps retrying while the server is unreachable.

    Example:
        >>> storage = PostgresStorage("postgresql://app@db.internal/app?pool_size=20")
        >>> await storage.open()  # doctest: +SKIP
    """

    url: str
    """The URL with its password masked."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int | None = None,
        statement_timeout: float | None = None,
        create: bool | None = None,
        auto_upgrade: bool | None = None,
        schema: str | None = None,
        reconnect_timeout: float = 30.0,
    ) -> None:
        self.settings: PgSettings = parse_url(
            url,
            pool_size=pool_size,
            statement_timeout=statement_timeout,
            create=create,
            auto_upgrade=auto_upgrade,
            schema=schema,
        )
        self.url = self.settings.masked_url
        self._db = PgConnections(self.settings, reconnect_timeout=reconnect_timeout)

    def __repr__(self) -> str:
        return f"PostgresStorage({self.url!r})"

    @classmethod
    def from_url(cls, url: str) -> PostgresStorage:
        """A PostgresStorage for ``url``, its options read from the URL's query (see the class)."""
        return cls(url)

    @property
    def create(self) -> bool:
        """Whether a missing database and schema are created on open."""
        return self.settings.create

    @create.setter
    def create(self, value: bool) -> None:
        self.settings.create = value

    @property
    def auto_upgrade(self) -> bool:
        """Whether an older schema is migrated on open."""
        return self.settings.auto_upgrade

    @auto_upgrade.setter
    def auto_upgrade(self, value: bool) -> None:
        self.settings.auto_upgrade = value

    # --- life cycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Create or check the schema and open the pool. Idempotent.

        Raises:
            StorageUnavailableError: the server cannot be reached; the message says what to check.
            SchemaVersionError: the schema is newer than this pyworkflow, or older and
                ``auto_upgrade`` is False.
        """
        await self._db.open()

    async def close(self) -> None:
        """Stop listening and close every connection. Idempotent."""
        await self._db.close()

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(kind, run_id)`` when another process changes a run.

        ``kind`` is ``"runnable"`` (a run became due: claim it) or ``"ended"`` (a run reached a
        terminal status). After a lost connection, ``("runnable", "*")``: look at storage.
        """
        self._db.subscribe(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        """Stop calling ``callback``."""
        self._db.unsubscribe(callback)

    # --- the protocol ---------------------------------------------------------------------------

    async def create_run(self, run: NewRun) -> tuple[RunRecord, bool]:
        """Insert a run and its first events in one statement; see ``Storage.create_run``.

        Runs started at once share a statement (``_pg_creates``).
        """
        return await self._db.create_run(run)

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""

        async def get(conn: asyncpg.Connection, _retried: bool) -> RunRecord | None:
            row = await _GET_RUN.fetchrow(conn, {"b_run_id": run_id})
            return None if row is None else run_from_row(row)

        return await self._db.run(get)

    async def list_runs(
        self,
        *,
        statuses: Collection[RunStatus] | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        before: RunCursor | None = None,
        parent_run_id: str | None = None,
    ) -> list[RunRecord]:
        """Runs newest first, filtered, keyset-paged; see ``Storage.list_runs``."""
        if limit <= 0 or (statuses is not None and not statuses):
            return []
        sql, args = compile_once_off(
            list_runs_statement(
                statuses=statuses,
                workflow_name=workflow_name,
                limit=limit,
                before=before,
                parent_run_id=parent_run_id,
            )
        )

        async def list_(conn: asyncpg.Connection, _retried: bool) -> list[RunRecord]:
            return [run_from_row(row) for row in await conn.fetch(sql, *args)]

        return await self._db.run(list_)

    async def load_events(self, run_id: str, after_seq: int = 0) -> list[EventRecord]:
        """Events of a run with ``seq > after_seq``, in seq order."""
        params = {"b_run_id": run_id, "b_after": after_seq}

        async def load(conn: asyncpg.Connection, _retried: bool) -> list[EventRecord]:
            return events_from_rows(run_id, await _LOAD_EVENTS.fetch(conn, params))

        return await self._db.run(load)

    async def append(self, write: AppendWrite) -> AppendResult:
        """Apply one turn atomically; concurrent appends share a statement (``_pg_batch``)."""
        return await self._db.append(write)

    async def claim_runs(
        self,
        *,
        owner: str,
        now: float,
        lease_expires_at: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
        run_ids: Collection[str] | None = None,
        due_only: bool = True,
        suspects: bool | None = None,
    ) -> list[RunRecord]:
        """Lease up to ``limit`` runnable runs (``FOR UPDATE SKIP LOCKED``), in one statement."""
        params = claim_params(
            owner=owner,
            now=now,
            lease_expires_at=lease_expires_at,
            limit=limit,
            workflow_names=workflow_names,
            run_ids=run_ids,
        )
        if params is None:
            return []
        query = _CLAIM["b_names" in params, "b_ids" in params, due_only, suspects]

        async def claim(conn: asyncpg.Connection, _retried: bool) -> list[RunRecord]:
            return claimed_runs(await query.fetch(conn, params))

        return await self._db.run(claim)

    async def take_due_runs(
        self,
        *,
        now: float,
        until: float,
        limit: int,
        workflow_names: Collection[str] | None = None,
    ) -> list[str]:
        """Set ``wake_at = until`` on up to ``limit`` runnable runs, in one statement.

        Candidates are locked with ``FOR UPDATE SKIP LOCKED``, as claims are, so concurrent
        takers split the runs. Ids come back earliest ``wake_at`` first.
        """
        if limit <= 0 or (workflow_names is not None and not workflow_names):
            return []
        params: dict[str, Any] = {"b_now": now, "b_until": until, "b_limit": limit}
        if workflow_names is not None:
            params["b_names"] = list(workflow_names)
        query = _TAKE_DUE[workflow_names is not None]

        async def take(conn: asyncpg.Connection, _retried: bool) -> list[str]:
            return taken_ids(await query.fetch(conn, params))

        return await self._db.run(take)

    async def renew_leases(
        self, *, owner: str, run_ids: Collection[str], now: float, lease_expires_at: float
    ) -> set[str]:
        """Extend the leases ``owner`` still holds; returns the ids it still holds."""
        if not run_ids:
            return set()
        params = {
            "b_ids": list(run_ids),
            "b_owner": owner,
            "b_now": now,
            "b_lease_expires_at": lease_expires_at,
        }

        async def renew(conn: asyncpg.Connection, _retried: bool) -> set[str]:
            return {row["run_id"] for row in await _RENEW_LEASES.fetch(conn, params)}

        return await self._db.run(renew)

    async def release_runs(self, *, owner: str, run_ids: Collection[str], now: float) -> None:
        """Drop the leases and make the runs due at once; other workers are notified."""
        if not run_ids:
            return
        params = {
            "b_ids": list(run_ids),
            "b_owner": owner,
            "b_now": now,
            "b_channel": self.settings.channel,
        }

        async def release(conn: asyncpg.Connection, _retried: bool) -> None:
            await _RELEASE_RUNS.fetch(conn, params)

        await self._db.run(release)

    async def request_cancel(self, run_id: str, *, now: float, reason: str | None) -> bool:
        """Record a cancel request, make the run due and notify; False if it has ended."""
        params = {
            "b_run_id": run_id,
            "b_now": now,
            "b_reason": reason,
            "b_channel": self.settings.channel,
        }

        async def cancel(conn: asyncpg.Connection, _retried: bool) -> bool:
            return bool(await _REQUEST_CANCEL.fetch(conn, params))

        return await self._db.run(cancel)

    async def reopen_failed_run(
        self, run_id: str, *, now: float, payload: dict[str, Any]
    ) -> RunRecord:
        """Append WORKFLOW_RESUMED to a failed run and make it pending and due, atomically."""
        (resumed,) = event_values(run_id, 0, [(EventType.WORKFLOW_RESUMED, payload)], now)
        params = {
            "b_run_id": run_id,
            "b_now": now,
            "b_payload": resumed["payload"],
            "b_channel": self.settings.channel,
        }

        async def reopen(conn: asyncpg.Connection, _retried: bool) -> RunRecord:
            row = await _REOPEN.fetchrow(conn, params)
            if row is None:
                raise reopen_refused(run_id, await _RUN_STATE.fetchrow(conn, {"b_run_id": run_id}))
            return run_from_row(tuple(row)[:-1])  # without the notification's column

        return await self._db.run(reopen)

    async def next_wake_at(self, *, workflow_names: Collection[str] | None = None) -> float | None:
        """When the next run becomes claimable, or None; see ``Storage.next_wake_at``."""
        if workflow_names is not None and not workflow_names:
            return None
        free, leased = _NEXT_WAKE[workflow_names is not None]
        params: dict[str, Any] = {} if workflow_names is None else {"b_names": list(workflow_names)}

        async def next_wake(conn: asyncpg.Connection, _retried: bool) -> float | None:
            first_free = await free.fetchval(conn, params)
            bound = float("inf") if first_free is None else first_free
            first_leased = await leased.fetchval(conn, {**params, "b_bound": bound})
            return earliest_wake(first_free, first_leased)

        return await self._db.run(next_wake)

    async def delete_ended_runs(self, *, ended_before: float, limit: int) -> list[str]:
        """Delete up to ``limit`` runs that ended before ``ended_before`` and their rows, at once.

        One statement (``PRUNE_ONE_TRIP``); runs locked by another statement are skipped.
        """
        if limit <= 0:
            return []
        params = {"b_ended_before": ended_before, "b_limit": limit}

        async def prune(conn: asyncpg.Connection, _retried: bool) -> list[str]:
            return [row["run_id"] for row in await _PRUNE.fetch(conn, params)]

        return await self._db.run(prune)
