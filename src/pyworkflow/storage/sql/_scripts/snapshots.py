"""The scripts of run snapshots: runs read whole, and runs written whole (a copy's two halves).

Both run in one transaction that sees one state (``SqlStorage._run_whole``): a read shows no
write that committed in between in part, and a write is all or nothing. Ids go to the database
in chunks, far below SQLite's limit on bound parameters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence

import sqlalchemy as sa

from pyworkflow.exceptions import CopyConflictError
from pyworkflow.storage.records import RunRecord, RunSnapshot
from pyworkflow.storage.sql._decoding import (
    events_from_rows,
    hook_from_row,
    run_from_row,
    step_lease_from_row,
)
from pyworkflow.storage.sql._params import snapshot_values
from pyworkflow.storage.sql._session import Row, Session
from pyworkflow.storage.sql._statements.retention import DELETE_RUN_ROWS
from pyworkflow.storage.sql._statements.snapshots import (
    COPY_INSERTS,
    DELETE_RUNS,
    EVENTS_OF_RUNS,
    HOOKS_OF_RUNS,
    RUNS_BY_IDS,
    RUNS_HOLDING_KEYS,
    RUNS_HOLDING_TOKENS,
    STEP_LEASES_OF_RUNS,
)
from pyworkflow.storage.sql._statements.stream_rows import (
    DELIVERIES_OF_STREAM_RUNS,
    SIGNALS_OF_STREAM_RUNS,
    STREAM_COPY_INSERTS,
    STREAM_RUNS_BY_IDS,
    STREAM_RUNS_OF_RUNS,
    SUBSCRIPTIONS_OF_STREAM_RUNS,
)
from pyworkflow.storage.sql._stream_snapshots import stream_snapshots, stream_values
from pyworkflow.storage.sql.schema import hooks as hooks_table
from pyworkflow.storage.streams import StreamSnapshot

__all__ = ["read_run_snapshots", "write_run_snapshots"]

_PER_STATEMENT = 500
_HOOK_RUN_ID = [column.name for column in hooks_table.c].index("run_id")


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _PER_STATEMENT):
        yield list(values[start : start + _PER_STATEMENT])


async def _rows(
    db: Session, statement: sa.Executable, name: str, values: Sequence[str]
) -> list[Row]:
    """Every row of ``statement`` over ``values`` bound as ``name``, chunk after chunk."""
    rows: list[Row] = []
    for chunk in _chunks(values):
        rows.extend(await db.all(statement, {name: chunk}))
    return rows


def _by_run(rows: list[Row], column: int = 0) -> dict[str, list[Row]]:
    """Rows grouped by the run id in ``column``, each group in the order read."""
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row[column]].append(row)
    return grouped


async def read_run_snapshots(db: Session, run_ids: Collection[str]) -> list[RunSnapshot]:
    """The known runs of ``run_ids`` whole, in their order; see ``Storage.read_run_snapshots``.

    Raises:
        CorruptRecordError: an event or hook of one of them cannot be read back.
    """
    wanted = list(dict.fromkeys(run_ids))
    found = {row[0]: run_from_row(row) for row in await _rows(db, RUNS_BY_IDS, "b_ids", wanted)}
    ids = [run_id for run_id in wanted if run_id in found]
    if not ids:
        return []
    events = _by_run(await _rows(db, EVENTS_OF_RUNS, "b_ids", ids))
    hooks = _by_run(await _rows(db, HOOKS_OF_RUNS, "b_ids", ids), _HOOK_RUN_ID)
    leases = _by_run(await _rows(db, STEP_LEASES_OF_RUNS, "b_ids", ids))
    streams = await _read_streams(db, ids)
    return [
        RunSnapshot(
            run=found[run_id],
            events=tuple(events_from_rows(run_id, [row[1:] for row in events.get(run_id, [])])),
            hooks=tuple(hook_from_row(row) for row in hooks.get(run_id, [])),
            step_leases=tuple(step_lease_from_row(row) for row in leases.get(run_id, [])),
            streams=streams.get(run_id, ()),
        )
        for run_id in ids
    ]


async def _read_streams(db: Session, run_ids: list[str]) -> dict[str, tuple[StreamSnapshot, ...]]:
    """The stream runs driven by ``run_ids``, whole, by driving run."""
    runs = await _rows(db, STREAM_RUNS_OF_RUNS, "b_ids", run_ids)
    if not runs:
        return {}
    ids = [row[0] for row in runs]
    return stream_snapshots(
        runs,
        await _rows(db, SUBSCRIPTIONS_OF_STREAM_RUNS, "b_stream_ids", ids),
        await _rows(db, SIGNALS_OF_STREAM_RUNS, "b_stream_ids", ids),
        await _rows(db, DELIVERIES_OF_STREAM_RUNS, "b_stream_ids", ids),
    )


async def write_run_snapshots(
    db: Session, url: str, snapshots: Sequence[RunSnapshot], replacing: Sequence[RunRecord]
) -> None:
    """Drop the runs of ``replacing``, then insert ``snapshots`` (``Storage.write_run_snapshots``).

    Every check comes before the first write.

    Raises:
        CopyConflictError: naming the runs; nothing is written.
    """
    if db.retried and await _written_before(db, snapshots, replacing):
        return  # the attempt that lost its connection did commit
    freed = [record.run_id for record in replacing]
    stored = {row[0]: run_from_row(row) for row in await _rows(db, RUNS_BY_IDS, "b_ids", freed)}
    moved = [r.run_id for r in replacing if stored.get(r.run_id) != r]
    if moved:
        raise CopyConflictError(
            url, moved, "changed here since the copy wrote them (a worker here drives them)"
        )
    await _check_free(db, url, snapshots, set(freed))
    for chunk in _chunks(freed):
        for delete in (*DELETE_RUN_ROWS, DELETE_RUNS):
            await db.execute(delete, {"b_ids": chunk})
    streams = stream_values(stream for s in snapshots for stream in s.streams)
    inserts = zip(
        (*COPY_INSERTS, *STREAM_COPY_INSERTS), (*snapshot_values(snapshots), *streams), strict=True
    )
    for insert, rows in inserts:
        if rows:
            await db.insert(insert, [{f"b_{k}": v for k, v in row.items()} for row in rows])


async def _check_free(
    db: Session, url: str, snapshots: Sequence[RunSnapshot], freed: set[str]
) -> None:
    """Raise CopyConflictError if a snapshot's run id, key or token hash is taken here."""
    ids = [s.run.run_id for s in snapshots]
    taken = {row[0] for row in await _rows(db, RUNS_BY_IDS, "b_ids", ids)} - freed
    if taken:
        raise CopyConflictError(url, [i for i in ids if i in taken], "already exist there")
    keys = {s.run.idempotency_key: s.run.run_id for s in snapshots if s.run.idempotency_key}
    holders = await _rows(db, RUNS_HOLDING_KEYS, "b_keys", list(keys))
    clashes = [keys[key] for holder, key in holders if holder not in freed]
    if clashes:
        raise CopyConflictError(url, clashes, "have idempotency keys that runs there already use")
    tokens = {h.token_hash: s.run.run_id for s in snapshots for h in s.hooks}
    holders = await _rows(db, RUNS_HOLDING_TOKENS, "b_hashes", list(tokens))
    clashes = list(dict.fromkeys(tokens[token] for holder, token in holders if holder not in freed))
    if clashes:
        raise CopyConflictError(url, clashes, "have hook tokens that runs there already use")
    streams = {st.record.stream_run_id: s.run.run_id for s in snapshots for st in s.streams}
    holders = await _rows(db, STREAM_RUNS_BY_IDS, "b_stream_ids", list(streams))
    clashes = list(dict.fromkeys(streams[i] for i, holder in holders if holder not in freed))
    if clashes:
        raise CopyConflictError(
            url, clashes, "drive stream runs whose ids stream runs there already use"
        )


async def _written_before(
    db: Session, snapshots: Sequence[RunSnapshot], replacing: Sequence[RunRecord]
) -> bool:
    """Whether the storage already holds exactly what this write would leave (a retry)."""
    ids = [*(s.run.run_id for s in snapshots), *(r.run_id for r in replacing)]
    # The replaced runs that no snapshot brings back must be gone.
    return await read_run_snapshots(db, ids) == list(snapshots)
