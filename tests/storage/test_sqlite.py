"""What the SQLite storage adds to the contract: group commit, pragmas, schema versions, and
real concurrency between processes sharing one file."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite as sqlite_dialect

from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import ConcurrencyConflictError, SchemaVersionError, StorageError
from pyworkflow.storage.records import AppendWrite, NewEvent, NewRun
from pyworkflow.storage.sql import migrate
from pyworkflow.storage.sql._statements.runs import count_runs_statement
from pyworkflow.storage.sqlite import SQLiteStorage
from pyworkflow.storage.sqlite import _storage as sqlite_module

T0 = 1_700_000_000.0
LEASE = T0 + 3600


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(f"sqlite:///{tmp_path}/wf.db")
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


async def start_leased(storage: SQLiteStorage, run_id: str, owner: str = "w1") -> None:
    await storage.create_run(
        NewRun(run_id, "wf", [], {"v": 1}, now=T0, lease_owner=owner, lease_expires_at=LEASE)
    )


def step(run_id: str, expected_seq: int, owner: str = "w1") -> AppendWrite:
    events = [
        NewEvent(EventType.STEP_STARTED, {"v": 1, "step": f"{run_id}#{expected_seq}"}),
        NewEvent(EventType.STEP_COMPLETED, {"v": 1, "result": expected_seq}),
    ]
    return AppendWrite(
        run_id=run_id,
        owner=owner,
        expected_seq=expected_seq,
        events=events,
        now=T0 + 1,
        status=RunStatus.RUNNING,
        wake_at=T0 + 1,
        lease_expires_at=LEASE,
    )


# --- group commit --------------------------------------------------------------------------------


async def test_concurrent_appends_share_commits_and_fail_on_their_own(
    store: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_ids = [f"r{i}" for i in range(20)]
    for run_id in run_ids:
        await start_leased(store, run_id)
    batches: list[int] = []
    run_batch = sqlite_module._run_batch

    def counting(conn: Any, raw: Any, batch: list[Any], url: str) -> None:
        batches.append(len(batch))
        run_batch(conn, raw, batch, url)

    monkeypatch.setattr(sqlite_module, "_run_batch", counting)
    # Hold the database thread so that every append below is queued before it looks again.
    gate = threading.Event()
    held = asyncio.ensure_future(store._call(lambda _conn: gate.wait(5), sqlite_module._Job.ALONE))
    writes = [step(run_id, 1) for run_id in run_ids]
    writes[7] = step("r7", 5)  # stale: r7 is at seq 1
    appends = [asyncio.ensure_future(store.append(write)) for write in writes]
    await asyncio.sleep(0.05)
    gate.set()
    await held
    results = await asyncio.gather(*appends, return_exceptions=True)

    assert isinstance(results[7], ConcurrencyConflictError)
    assert results[7].run_id == "r7"
    assert "stale seq" in str(results[7])
    for i, result in enumerate(results):
        if i != 7:
            assert not isinstance(result, BaseException), result
            assert result.last_seq == 3
    assert batches == [20]  # one transaction, one commit for all twenty
    # Every good append is durable and the stale one wrote nothing: read back from disk.
    with sqlite3.connect(store.path) as raw:
        seqs = dict(raw.execute("SELECT run_id, last_seq FROM runs").fetchall())
        events = dict(raw.execute("SELECT run_id, count(*) FROM events GROUP BY run_id").fetchall())
    raw.close()
    assert seqs == {run_id: (1 if run_id == "r7" else 3) for run_id in run_ids}
    assert events == {run_id: (1 if run_id == "r7" else 3) for run_id in run_ids}


class FailingCommit:
    """The driver connection, except that COMMIT fails (as a full disk would)."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def execute(self, statement: str, *args: Any) -> Any:
        if statement == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full (simulated)")
        return self.raw.execute(statement, *args)

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    @property
    def total_changes(self) -> int:
        return self.raw.total_changes


async def test_a_failed_commit_fails_every_job_of_the_batch(
    store: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    for run_id in ("a", "b", "c"):
        await start_leased(store, run_id)
    run_batch = sqlite_module._run_batch
    monkeypatch.setattr(
        sqlite_module,
        "_run_batch",
        lambda conn, raw, batch, url: run_batch(conn, FailingCommit(raw), batch, url),
    )
    gate = threading.Event()
    held = asyncio.ensure_future(store._call(lambda _conn: gate.wait(5), sqlite_module._Job.ALONE))
    appends = [asyncio.ensure_future(store.append(step(r, 1))) for r in ("a", "b", "c")]
    await asyncio.sleep(0.05)
    gate.set()
    await held
    results = await asyncio.gather(*appends, return_exceptions=True)

    for result in results:
        assert isinstance(result, StorageError), result
        assert "disk is full" in str(result)
        assert isinstance(result.__cause__, sqlite3.OperationalError)
    monkeypatch.setattr(sqlite_module, "_run_batch", run_batch)
    for run_id in ("a", "b", "c"):  # rolled back, and the storage still works
        record = await store.get_run(run_id)
        assert record is not None
        assert record.last_seq == 1
    assert (await store.append(step("a", 1))).last_seq == 3


async def test_driver_errors_become_storage_errors_with_the_cause_chained(
    store: SQLiteStorage,
) -> None:
    await store.create_run(NewRun("dup", "wf", [], {}, now=T0))
    with pytest.raises(StorageError) as caught:
        await store._call(
            lambda conn: conn.exec_driver_sql("INSERT INTO runs (run_id) VALUES ('dup')"),
            sqlite_module._Job.WRITE,
        )
    assert isinstance(caught.value.__cause__, Exception)
    assert "IntegrityError" in str(caught.value)


async def test_any_event_loop_may_use_the_storage(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "loops.db")  # type: ignore[arg-type]
    await storage.open()
    await storage.create_run(NewRun("r1", "wf", [1], {}, now=T0))

    def other_loop() -> Any:
        return asyncio.run(storage.get_run("r1"))

    record = await asyncio.to_thread(other_loop)
    assert record is not None
    assert record.args == [1]
    await storage.close()
    with pytest.raises(StorageError, match="closed"):
        await storage.get_run("r1")


# --- pragmas and urls ----------------------------------------------------------------------------


def pragma(storage: SQLiteStorage, name: str) -> Any:
    return storage._call(
        lambda conn: conn.exec_driver_sql(f"PRAGMA {name}").scalar(), sqlite_module._Job.READ
    )


async def test_pragmas_are_wal_and_full(store: SQLiteStorage) -> None:
    assert await pragma(store, "journal_mode") == "wal"
    assert await pragma(store, "synchronous") == 2  # FULL
    assert await pragma(store, "busy_timeout") == 30_000


async def test_synchronous_normal_is_an_opt_in(tmp_path: Path) -> None:
    storage = SQLiteStorage(str(tmp_path / "n.db"), synchronous="NORMAL", busy_timeout=2)
    await storage.open()
    try:
        assert await pragma(storage, "synchronous") == 1
        assert await pragma(storage, "busy_timeout") == 2000
    finally:
        await storage.close()


async def test_urls_and_paths_create_parent_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = SQLiteStorage("sqlite:///rel/dir/a.db")
    absolute = SQLiteStorage(f"sqlite:///{tmp_path}/abs/b.db")
    plain = SQLiteStorage(str(tmp_path / "plain" / "c.db"))
    assert relative.url == "sqlite:///rel/dir/a.db"
    assert absolute.url == f"sqlite:///{tmp_path}/abs/b.db"
    for storage in (relative, absolute, plain):
        await storage.open()
        await storage.close()
    assert (tmp_path / "rel/dir/a.db").exists()
    assert (tmp_path / "abs/b.db").exists()
    assert (tmp_path / "plain/c.db").exists()


async def test_create_false_refuses_a_missing_database(tmp_path: Path) -> None:
    storage = SQLiteStorage(str(tmp_path / "missing.db"), create=False)
    with pytest.raises(StorageError, match="create=False"):
        await storage.open()
    assert not (tmp_path / "missing.db").exists()


# --- schema versions -----------------------------------------------------------------------------


async def make_database(path: Path) -> None:
    storage = SQLiteStorage(str(path))
    await storage.open()
    await storage.close()


def set_revision(path: Path, revision: str) -> None:
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    raw.close()


async def test_an_older_schema_without_auto_upgrade_names_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    await make_database(path)
    # Pretend this pyworkflow knows a newer revision than the one the database has.
    monkeypatch.setattr(migrate, "REVISIONS", (*migrate.REVISIONS, "9000"))
    monkeypatch.setattr(migrate, "HEAD_REVISION", "9000")
    monkeypatch.setattr(sqlite_module, "HEAD_REVISION", "9000")
    storage = SQLiteStorage(str(path), auto_upgrade=False)
    with pytest.raises(SchemaVersionError) as caught:
        await storage.open()
    assert f"pyworkflow db upgrade --storage {storage.url}" in str(caught.value)
    assert "older" in str(caught.value)
    await storage.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    await make_database(path)
    set_revision(path, "9999_from_the_future")
    storage = SQLiteStorage(str(path))
    with pytest.raises(SchemaVersionError, match="newer pyworkflow"):
        await storage.open()
    await storage.close()


async def test_tables_without_a_version_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "foreign.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE runs (id INTEGER)")
    raw.close()
    with pytest.raises(SchemaVersionError, match="no schema version"):
        await SQLiteStorage(str(path)).open()


async def test_reopening_an_up_to_date_database_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "again.db"
    first = SQLiteStorage(str(path))
    await first.create_run(NewRun("r1", "wf", [], {}, now=T0))  # opens on first use
    await first.close()
    second = SQLiteStorage(str(path), create=False, auto_upgrade=False)
    await second.open()
    assert (await second.get_run("r1")) is not None
    await second.close()


# --- two processes on one file -------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pathlib import Path
    from pyworkflow.events import EventType, RunStatus
    from pyworkflow.exceptions import ConcurrencyConflictError
    from pyworkflow.storage.records import AppendWrite, NewEvent
    from pyworkflow.storage.sqlite import SQLiteStorage

    mode, path, go, name = sys.argv[1:5]

    async def main():
        storage = SQLiteStorage(path, busy_timeout=10)
        await storage.open()
        Path(go + "." + name).touch()  # ready
        while not Path(go).exists():
            time.sleep(0.001)
        out = []
        if mode == "append":
            event = NewEvent(EventType.STEP_COMPLETED, {"by": name})
            write = AppendWrite("r1", "w", 1, [event], now=1.0, lease_expires_at=9e9)
            try:
                out.append((await storage.append(write)).last_seq)
            except ConcurrencyConflictError as exc:
                out.append("conflict: " + str(exc))
        else:
            while True:
                got = await storage.claim_runs(
                    owner=name, now=10.0, lease_expires_at=9e9, limit=3
                )
                if not got:
                    break
                out.extend(r.run_id for r in got)
                # Work on them, long enough for the other process's busy handler (which backs
                # off up to 100 ms between tries) to find the write lock free: they interleave.
                await asyncio.sleep(0.03)
        await storage.close()
        print(json.dumps(out))

    asyncio.run(main())
    """
)


def run_two(tmp_path: Path, mode: str, db: Path) -> list[list[Any]]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    go = tmp_path / f"go-{mode}"
    children = [
        subprocess.Popen(
            [sys.executable, str(script), mode, str(db), str(go), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("p1", "p2")
    ]
    # Both must have opened the database before the start signal, however slowly they start
    # (a loaded machine takes seconds to import): otherwise one does all the work alone.
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}.{name}").exists() for name in ("p1", "p2")):
        assert time.monotonic() < deadline, "the child processes did not start"
        assert all(child.poll() is None for child in children), "a child process exited"
        time.sleep(0.01)
    go.touch()
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        outputs.append(json.loads(out))
    return outputs


@pytest.mark.slow
async def test_two_processes_appending_the_same_seq_exactly_one_wins(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    storage = SQLiteStorage(str(db))
    await storage.create_run(
        NewRun("r1", "wf", [], {}, now=1.0, lease_owner="w", lease_expires_at=9e9)
    )
    await storage.close()

    outputs = await asyncio.to_thread(run_two, tmp_path, "append", db)

    results = [out[0] for out in outputs]
    winners = [r for r in results if r == 2]
    losers = [r for r in results if isinstance(r, str) and r.startswith("conflict")]
    assert len(winners) == 1, results
    assert len(losers) == 1, results
    storage = SQLiteStorage(str(db))
    events = await storage.load_events("r1")
    await storage.close()
    assert [e.seq for e in events] == [1, 2]


@pytest.mark.slow
async def test_two_processes_claiming_one_queue_never_claim_the_same_run(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    storage = SQLiteStorage(str(db))
    run_ids = {f"run-{i:03}" for i in range(120)}
    for i, run_id in enumerate(sorted(run_ids)):
        await storage.create_run(NewRun(run_id, "wf", [], {}, now=1.0 + i / 1000))
    await storage.close()

    first, second = await asyncio.to_thread(run_two, tmp_path, "claim", db)

    assert first, "the first process claimed nothing: the race was not exercised"
    assert second, "the second process claimed nothing: the race was not exercised"
    assert not set(first) & set(second)
    assert len(first) + len(second) == len(run_ids)
    assert set(first) | set(second) == run_ids
    storage = SQLiteStorage(str(db))
    owners = {r.lease_owner for r in await storage.list_runs(limit=500)}
    await storage.close()
    assert owners <= {"p1", "p2"}


def test_storage_url_options() -> None:
    from pyworkflow.exceptions import ConfigurationError
    from pyworkflow.storage import storage_from_url

    normal = storage_from_url("sqlite:///x.db?synchronous=NORMAL")
    assert isinstance(normal, SQLiteStorage)
    assert normal.synchronous == "NORMAL"
    with pytest.raises(ConfigurationError, match=r"unknown option.*sync"):
        storage_from_url("sqlite:///x.db?sync=1")
    with pytest.raises(ConfigurationError, match="'5 parsecs'"):
        storage_from_url("sqlite:///x.db?synchronous=5 parsecs")


async def test_a_job_that_fails_after_writing_is_undone_alone(store: SQLiteStorage) -> None:
    # The batch first runs without savepoints; a job failing after its first write makes the
    # whole batch run again with a savepoint per job, so only that job's writes are undone.
    for run_id in ("a", "b"):
        await start_leased(store, run_id)

    def write_then_fail(conn: Any) -> None:
        conn.exec_driver_sql("UPDATE runs SET workflow_name = 'broken' WHERE run_id = 'a'")
        raise RuntimeError("failed after writing")

    gate = threading.Event()
    held = asyncio.ensure_future(store._call(lambda _conn: gate.wait(5), sqlite_module._Job.ALONE))
    failing = asyncio.ensure_future(store._call(write_then_fail, sqlite_module._Job.WRITE))
    good = asyncio.ensure_future(store.append(step("b", 1)))
    await asyncio.sleep(0.05)
    gate.set()
    await held
    with pytest.raises(RuntimeError, match="failed after writing"):
        await failing
    assert (await good).last_seq == 3
    record = await store.get_run("a")
    assert record is not None
    assert record.workflow_name != "broken"


@pytest.mark.parametrize(
    ("workflow", "since", "index"),
    [
        (None, None, "ix_runs_status_created"),
        ("pay", None, "ix_runs_workflow_status"),
        ("pay", T0, "ix_runs_workflow_status"),
    ],
)
async def test_counts_per_status_read_an_index_alone(
    store: SQLiteStorage, workflow: str | None, since: float | None, index: str
) -> None:
    # The dashboard polls these counts every 2 s: they must never visit the runs' rows.
    for i in range(20):
        await store.create_run(
            NewRun(f"r{i}", "pay" if i % 2 else "ship", {"args": [], "kwargs": {}}, {}, T0 + i)
        )
    compiled = count_runs_statement(workflow, since).compile(
        dialect=sqlite_dialect.dialect(),
        compile_kwargs={"literal_binds": True},
    )
    with sqlite3.connect(store.path) as db:
        plan = " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {compiled}"))
    assert f"COVERING INDEX {index}" in plan, plan
    assert await store.count_runs(workflow_name=workflow, since=since) == {
        RunStatus.PENDING: 20 if workflow is None else 10
    }
