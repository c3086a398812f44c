"""A separate process with a PostgresStorage of its own, driven line by line from a test.

Run as a script: each line on stdin is a JSON command, each reply a JSON line on stdout, so a
test can start a few of these once and make them act at the same moment (write a command to
each, then read the replies) on a schema of the session's database. Every storage call goes
through the public Storage protocol, on this process's own pool and event loop.

Commands (``url`` names the storage; it is opened on first use and kept until a command names
another):
    ``{"op": "append", "run_id", "owner", "expected_seq", "tag", "lease_seconds"}``: append
        one STEP_COMPLETED event whose payload names ``tag``, keeping the lease that much
        longer; replies the new last seq.
    ``{"op": "claim", "owner", "lease_seconds", "run_ids"}``: claim now (this process's clock).
    ``{"op": "renew", "owner", "run_ids", "lease_seconds"}``: the ids still held.
    ``{"op": "drain", "owner", "batch", "pause"}``: claim ``batch`` runs at a time, pausing
        between claims as a worker would while it works, until none is left; the claimed ids.
    ``{"op": "start", "runs": [[run_id, workflow, key], ...]}``: all ``create_run`` calls at
        once (``asyncio.gather``); for each, ``[run_id, created]`` or the error.
    ``{"op": "open"}``: open the storage (so that a later command starts at once).
A refused call replies ``{"error": type name, "message": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from pyworkflow.events import EventType
from pyworkflow.exceptions import PyWorkflowError
from pyworkflow.storage.postgres import PostgresStorage
from pyworkflow.storage.records import AppendWrite, NewEvent, NewRun

# One storage at a time, with a small pool: the server is shared, its connections are few.
POOL_SIZE = 4
_storages: dict[str, PostgresStorage] = {}


async def _storage(url: str) -> PostgresStorage:
    if url not in _storages:
        for old in _storages.values():
            await old.close()
        _storages.clear()
        _storages[url] = PostgresStorage(url, pool_size=POOL_SIZE)
        await _storages[url].open()
    return _storages[url]


def _failure(exc: PyWorkflowError) -> dict[str, Any]:
    return {"error": type(exc).__name__, "message": str(exc)}


async def _start(storage: PostgresStorage, runs: list[list[Any]]) -> list[Any]:
    now = time.time()

    async def one(run_id: str, workflow: str, key: str | None) -> Any:
        new = NewRun(run_id, workflow, [], {"v": 1, "by": run_id}, now=now, idempotency_key=key)
        try:
            record, created = await storage.create_run(new)
        except PyWorkflowError as exc:
            return _failure(exc)
        return [record.run_id, created]

    return list(await asyncio.gather(*(one(*run) for run in runs)))


async def _drain(storage: PostgresStorage, owner: str, batch: int, pause: float) -> list[str]:
    claimed: list[str] = []
    while True:
        now = time.time()
        got = await storage.claim_runs(
            owner=owner, now=now, lease_expires_at=now + 600, limit=batch
        )
        if not got:
            return claimed
        claimed.extend(run.run_id for run in got)
        await asyncio.sleep(pause)


async def handle(command: dict[str, Any]) -> Any:
    storage = await _storage(command["url"])
    op = command["op"]
    if op == "open":
        return None
    if op == "append":
        event = NewEvent(EventType.STEP_COMPLETED, {"v": 1, "by": command["tag"]})
        now = time.time()
        write = AppendWrite(
            run_id=command["run_id"],
            owner=command["owner"],
            expected_seq=command["expected_seq"],
            events=[event],
            now=now,
            wake_at=now,  # as the engine writes it: due again the moment the lease lapses
            lease_expires_at=now + command["lease_seconds"],
        )
        return (await storage.append(write)).last_seq
    if op == "claim":
        now = time.time()
        claimed = await storage.claim_runs(
            owner=command["owner"],
            now=now,
            lease_expires_at=now + command["lease_seconds"],
            limit=10,
            run_ids=command["run_ids"],
        )
        return [[run.run_id, run.lease_owner, run.recovery_count] for run in claimed]
    if op == "renew":
        now = time.time()
        held = await storage.renew_leases(
            owner=command["owner"],
            run_ids=command["run_ids"],
            now=now,
            lease_expires_at=now + command["lease_seconds"],
        )
        return sorted(held)
    if op == "drain":
        return await _drain(storage, command["owner"], command["batch"], command["pause"])
    if op == "start":
        return await _start(storage, command["runs"])
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    loop = asyncio.new_event_loop()
    try:
        for line in sys.stdin:
            try:
                reply = {"ok": loop.run_until_complete(handle(json.loads(line)))}
            except PyWorkflowError as exc:
                reply = _failure(exc)
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    finally:
        for storage in _storages.values():
            loop.run_until_complete(storage.close())
        loop.close()


if __name__ == "__main__":
    main()
