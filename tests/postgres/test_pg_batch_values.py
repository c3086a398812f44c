"""What a batch stores is what a lone write stores, to the byte.

PostgreSQL's batches (``postgres/_appends``, ``_creates``) send their writes as one JSON document
and unpack it with ``json_to_recordset``; a lone write binds each value. Payloads, arguments and
results are JSON text in their columns, and the two paths must leave the same text: same key
order, same float digits, same escapes, a JSON string stored with its quotes, a completed run's
``None`` result stored as ``null``. Times must come back as the very floats written.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from postgres_server import PostgresServer
from pyworkflow.events import EventType, RunStatus
from pyworkflow.storage.postgres import PostgresStorage
from pyworkflow.storage.postgres import _appends as pg_batch
from pyworkflow.storage.postgres import _creates as pg_creates
from pyworkflow.storage.records import AppendWrite, NewEvent, NewRun

# Awkward on purpose: keys out of order, floats whose shortest repr is long, escapes, unicode
# (written as \\u escapes), an empty key, nesting, big integers, and a string that looks like JSON.
PAYLOAD: dict[str, Any] = {
    "zeta": 0.1,
    "alpha": [1, 2.5, -0.0, 1e-300, 1.7976931348623157e308, 12345678901234567890],
    "": {"nested": {"é": 'naïve \u2028 "quoted" \\ back', "none": None, "t": True}},
    "looks_like_json": '{"a": 1}',
}
RESULTS: list[Any] = ["hello", None, {"b": 1, "a": 2}, [0.30000000000000004], 7]
NOW = 1_796_544_411.8419297


def _new(run_id: str, lease_expires_at: float) -> NewRun:
    started = NewEvent(EventType.STEP_STARTED, {"step_id": "s#1", **PAYLOAD})
    return NewRun(
        run_id,
        "wf",
        {"args": [PAYLOAD], "kwargs": {"k": "é"}},
        {"deadline": None, "extra": PAYLOAD},
        now=NOW,
        lease_owner="owner",
        lease_expires_at=lease_expires_at,
        first_events=(started,),
        status=RunStatus.RUNNING,
    )


def _end(run_id: str, result: Any) -> AppendWrite:
    events = [
        NewEvent(EventType.STEP_COMPLETED, {"step_id": "s#1", "result": result, "p": PAYLOAD}),
        NewEvent(EventType.WORKFLOW_COMPLETED, {"result": result}),
    ]
    return AppendWrite(
        run_id=run_id,
        owner="owner",
        expected_seq=2,
        events=events,
        now=NOW + 0.1,
        status=RunStatus.COMPLETED,
        result=result,
        progressed=True,
    )


class _Counting:
    """A stand-in for a batch statement that records how many writes each call carried."""

    def __init__(self, query: Any, key: str, sizes: list[int]) -> None:
        self.query, self.key, self.sizes = query, key, sizes

    async def fetch(self, conn: asyncpg.Connection, params: dict[str, Any]) -> list[Any]:
        self.sizes.append(len(json.loads(params[self.key])))
        return await self.query.fetch(conn, params)  # type: ignore[no-any-return]


async def _stored(url: str, run_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """Each run's columns and its events' rows, as PostgreSQL holds them."""
    conn = await asyncpg.connect(url.split("?")[0])
    try:
        schema = url.split("schema=")[1].split("&")[0]
        await conn.execute(f'SET search_path TO "{schema}"')
        found = {}
        for run_id in run_ids:
            run = await conn.fetchrow(
                "SELECT args, result, status, created_at, lease_expires_at, last_seq "
                "FROM runs WHERE run_id = $1",
                run_id,
            )
            events = await conn.fetch(
                "SELECT seq, type, payload, created_at FROM events WHERE run_id = $1 ORDER BY seq",
                run_id,
            )
            found[run_id] = (tuple(run), [tuple(e) for e in events])
        return found
    finally:
        await conn.close()


async def test_batches_store_the_same_text_and_floats_as_lone_writes(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_server.fresh_url(pool_size="1")
    storage = PostgresStorage(url)
    sizes: list[int] = []
    for module, name, key in (
        (pg_creates, "_CREATE_RUN_BATCH", "b_runs"),
        (pg_batch, "_APPEND_BATCH_ENDING", "b_writes"),
    ):
        monkeypatch.setattr(module, name, _Counting(getattr(module, name), key, sizes))
    await storage.open()
    try:
        lease = NOW + 15.123456789
        # One connection: the first of each burst goes alone, the others in one batch.
        alone, batched = "alone", [f"b{i}" for i in range(len(RESULTS))]
        await storage.create_run(_new(alone, lease))
        await storage.append(_end(alone, RESULTS[0]))
        await asyncio.gather(*(storage.create_run(_new(r, lease)) for r in ["x", *batched]))
        await asyncio.gather(
            storage.append(_end("x", 0)),
            *(storage.append(_end(r, v)) for r, v in zip(batched, RESULTS, strict=True)),
        )
        assert max(sizes, default=0) > 1, sizes  # the batch paths did carry several writes

        stored = await _stored(url, [alone, *batched])
        # The lone write and the batched write of the same values left the same bytes.
        assert stored[alone] == stored["b0"]
        for run_id, result in zip(batched, RESULTS, strict=True):
            (args, result_text, status, created_at, lease_at, last_seq), events = stored[run_id]
            assert (
                args == '{"args":[' + json.dumps(PAYLOAD, separators=(",", ":")) + "],"
                '"kwargs":{"k":"\\u00e9"}}'
            )
            assert result_text == json.dumps(result, separators=(",", ":"))  # "null", '"hello"'
            assert (status, created_at, lease_at, last_seq) == ("completed", NOW, None, 4)
            assert [(seq, type_) for seq, type_, _, _ in events] == [
                (1, "workflow_started"), (2, "step_started"),
                (3, "step_completed"), (4, "workflow_completed"),
            ]  # fmt: skip
            assert [when for *_, when in events] == [NOW, NOW, NOW + 0.1, NOW + 0.1]
            assert events[1][2] == json.dumps({"step_id": "s#1", **PAYLOAD}, separators=(",", ":"))
        # And read back through the storage, the values are the ones written, keys in order.
        for run_id, result in zip(batched, RESULTS, strict=True):
            run = await storage.get_run(run_id)
            assert run is not None
            assert run.result == result
            loaded = await storage.load_events(run_id)
            assert list(loaded[2].payload["p"]) == list(PAYLOAD)
            assert loaded[2].payload == {"step_id": "s#1", "result": result, "p": PAYLOAD}
    finally:
        await storage.close()
