"""Reading back a cell that was damaged on disk: a typed error naming the table, run and column.

Each SQL backend decodes its JSON cells in one place (``storage/sql/_decoding.py``). A run's row
with a bad cell still reads (listings and claims must not lose the other runs): its record carries
the damage, as a ``CorruptRecordError``, and the bad value reads as None. An event or hook that
cannot be read raises that error. Cells are damaged with plain SQL (tests/corrupt_cells.py); memory
storage keeps Python objects, which no byte can damage.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backends import SHARED, fresh_storages
from corrupt_cells import TRUNCATED_JSON, WRONG_TYPE_JSON, add_run, set_cell
from pyworkflow.events import EventType, HookStatus, RunStatus
from pyworkflow.exceptions import CorruptRecordError, StorageError
from pyworkflow.storage import Storage
from pyworkflow.storage.records import AppendWrite, NewEvent, NewHook


@pytest.fixture(params=SHARED)  # the backends that store bytes (memory keeps objects)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    store = fresh_storages(request.param, tmp_path, request)()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _assert_names(error: CorruptRecordError, table: str, run_id: str, column: str) -> None:
    assert isinstance(error, StorageError)
    assert (error.table, error.run_id, error.column) == (table, run_id, column)
    assert f"{table}.{column}" in str(error)
    assert run_id in str(error)


async def test_a_run_with_a_corrupt_cell_reads_as_damaged_and_others_read_whole(
    storage: Storage,
) -> None:
    sound = await add_run(storage, "wf", 1)
    truncated = await add_run(storage, "wf", 2)
    wrong_error = await add_run(storage, "wf", 3)
    await set_cell(storage, "runs", "args", TRUNCATED_JSON, run_id=truncated)
    await set_cell(storage, "runs", "error", WRONG_TYPE_JSON, run_id=wrong_error)

    record = await storage.get_run(truncated)
    assert record is not None
    assert record.damage is not None
    _assert_names(record.damage, "runs", truncated, "args")
    assert record.damage.value == TRUNCATED_JSON
    assert record.args is None
    assert (record.workflow_name, record.status, record.last_seq) == ("wf", RunStatus.PENDING, 1)

    bad_status = await add_run(storage, "wf", 4)
    await set_cell(storage, "runs", "status", "halfway", run_id=bad_status)
    listed = {r.run_id: r for r in await storage.list_runs(limit=10)}
    assert set(listed) == {sound, truncated, wrong_error, bad_status}
    assert listed[bad_status].damage is not None
    _assert_names(listed[bad_status].damage, "runs", bad_status, "status")
    assert listed[bad_status].status is RunStatus.FAILED  # a stand-in; damage says why
    assert listed[bad_status].args == {"args": [4], "kwargs": {}}
    assert listed[sound].damage is None
    assert listed[sound].args == {"args": [1], "kwargs": {}}
    assert listed[wrong_error].damage is not None
    _assert_names(listed[wrong_error].damage, "runs", wrong_error, "error")
    assert "12345" in str(listed[wrong_error].damage)


async def test_a_claim_returns_every_run_it_leased_the_damaged_one_marked(
    storage: Storage,
) -> None:
    ids = [await add_run(storage, "wf", n) for n in range(4)]
    await set_cell(storage, "runs", "args", TRUNCATED_JSON, run_id=ids[2])
    now = time.time()
    claimed = await storage.claim_runs(owner="w1", now=now + 1, lease_expires_at=now + 60, limit=10)
    assert sorted(r.run_id for r in claimed) == sorted(ids)
    assert all(r.lease_owner == "w1" for r in claimed)
    damaged = [r for r in claimed if r.damage is not None]
    assert [r.run_id for r in damaged] == [ids[2]]


@pytest.mark.parametrize("bad", [TRUNCATED_JSON, WRONG_TYPE_JSON])
async def test_an_event_that_cannot_be_read_raises_a_typed_error(
    storage: Storage, bad: str
) -> None:
    run_id = await add_run(storage, "wf", 1)
    await set_cell(storage, "events", "payload", bad, run_id=run_id, seq=1)
    with pytest.raises(CorruptRecordError) as info:
        await storage.load_events(run_id)
    _assert_names(info.value, "events", run_id, "payload")
    assert info.value.seq == 1
    assert "seq 1" in str(info.value)
    await _assert_still_serving(storage, run_id)


async def test_a_hook_whose_payload_cannot_be_read_raises_a_typed_error(
    storage: Storage,
) -> None:
    run_id = await add_run(storage, "wf", 1)
    now = time.time()
    await storage.claim_runs(owner="w1", now=now + 1, lease_expires_at=now + 60, limit=1)
    hook = NewHook(token_hash="ab" * 32, hook_id="hook:approval#1", name="approval")
    await storage.append(
        AppendWrite(
            run_id=run_id,
            owner="w1",
            expected_seq=1,
            events=[NewEvent(EventType.HOOK_CREATED, {"v": 1, "hook": hook.hook_id})],
            now=now + 2,
            status=RunStatus.SUSPENDED,
            lease_expires_at=None,
            hooks=[hook],
        )
    )
    await storage.deliver_hook(hook.token_hash, {"ok": True}, now=now + 3)
    await set_cell(storage, "hooks", "payload", TRUNCATED_JSON, run_id=run_id)
    with pytest.raises(CorruptRecordError) as info:
        await storage.list_hooks(run_id=run_id, status=HookStatus.RECEIVED)
    _assert_names(info.value, "hooks", run_id, "payload")
    await _assert_still_serving(storage, run_id)


async def _assert_still_serving(storage: Storage, run_id: str) -> None:
    """The error left the connection sound: a write after it commits."""
    assert await storage.request_cancel(run_id, now=time.time() + 10, reason="checking")
    record = await storage.get_run(run_id)
    assert record is not None
    assert record.cancel_requested
