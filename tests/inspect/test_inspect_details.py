"""A run in detail (``get_run_details``), its history and its JSON, on memory and SQLite."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from crafted_runs import T0, call, craft, log, new_run

from pyworkflow.events import EventType, RunStatus
from pyworkflow.exceptions import InputError, RunNotFoundError
from pyworkflow.inspect import (
    Undecodable,
    get_decoded_run,
    get_history,
    get_run,
    get_run_details,
)
from pyworkflow.serialization import Codec
from pyworkflow.storage import SQLiteStorage, Storage

E = EventType
ERROR = {"type": "ValueError", "message": "card declined", "traceback": "Traceback ..."}
GONE = {"__pw__": "dataclass", "cls": "gone.mod:Gone", "fields": {"n": 1}}

# A run's life with every way a step attempt ends.
STEPS: list[tuple[EventType, dict[str, Any]]] = [
    (E.STEP_STARTED, {"step_id": "charge#1", "name": "charge", "attempt": 1}),
    (E.STEP_RETRYING, {"step_id": "charge#1", "attempt": 1, "error": ERROR, "retry_at": T0 + 9}),
    (E.STEP_STARTED, {"step_id": "charge#1", "name": "charge", "attempt": 2}),
    # Its worker died mid-attempt; the next owner says which attempts it cut short.
    (
        E.WORKFLOW_INTERRUPTED,
        {
            "owner": "w-1",
            "reason": "lease lapsed",
            "recovery": 1,
            "steps": [{"step_id": "charge#1", "attempt": 2}],
        },
    ),
    (E.STEP_STARTED, {"step_id": "charge#1", "name": "charge", "attempt": 3}),
    # A second start while attempt 3 is open: its worker stopped without a word.
    (E.STEP_STARTED, {"step_id": "charge#1", "name": "charge", "attempt": 4}),
    (E.STEP_COMPLETED, {"step_id": "charge#1", "result": 42}),
    (E.STEP_STARTED, {"step_id": "ship#1", "attempt": 1}),
    (E.STEP_FAILED, {"step_id": "ship#1", "error": ERROR}),
    (E.CHILD_WORKFLOW_CANCEL_REQUESTED, {"child_id": "child:c#1", "child_run_id": "run_c"}),
    (E.STEP_STARTED, {"step_id": "mail#1", "name": "mail", "attempt": 1}),
]


async def test_every_way_an_attempt_ends(storage: Storage) -> None:
    ended = [*STEPS, (E.WORKFLOW_FAILED, {"error": ERROR})]
    await craft(storage, new_run("run_a"), ended, status=RunStatus.FAILED, error=ERROR)
    details = await get_run_details(storage, "run_a", codec=Codec())
    assert [(a.step_id, a.attempt, a.outcome) for a in details.steps] == [
        ("charge#1", 1, "retried"),
        ("charge#1", 2, "interrupted"),
        ("charge#1", 3, "interrupted"),
        ("charge#1", 4, "completed"),
        ("ship#1", 1, "failed"),
        # The run ended while it ran: its outcome was never logged.
        ("mail#1", 1, "interrupted"),
    ]
    retried, *_, failed, cut = details.steps
    assert retried.error == ERROR
    assert failed.error == ERROR
    assert failed.name == "ship"  # no name logged: the step id's
    assert (retried.started_at, retried.ended_at, retried.duration) == (T0 + 1, T0 + 2, 1.0)
    assert cut.ended_at == T0 + len(ended)
    assert details.run.error == ERROR

    await craft(storage, new_run("run_b"), STEPS)  # still running
    running = (await get_run_details(storage, "run_b", codec=Codec())).steps[-1]
    assert (running.step_id, running.outcome, running.ended_at, running.duration) == (
        "mail#1",
        "running",
        None,
        None,
    )
    assert running.to_json()["ended_at"] is None


async def test_the_timeline_has_every_event_with_the_time_between(storage: Storage) -> None:
    await craft(storage, new_run("run_a", arguments=call(5, who="ana")), STEPS, gap=2.5)
    details = await get_run_details(storage, "run_a", codec=Codec())
    entries = details.timeline
    assert [e.seq for e in entries] == list(range(1, len(STEPS) + 2))
    assert entries[0].summary == 'wf(5, who="ana")'
    assert entries[0].type == "workflow_started"
    assert [e.since_previous for e in entries[1:]] == [2.5] * len(STEPS)
    assert entries[-1].since_start == 2.5 * len(STEPS)
    cancel = next(e for e in entries if e.type == "child_workflow_cancel_requested")
    assert cancel.summary == "child:c#1 (run_c) asked to cancel"
    assert entries[1].to_json() == {
        "seq": 2,
        "type": "step_started",
        "timestamp": "2024-05-01T12:00:02.500000+00:00",
        "since_previous": 2.5,
        "since_start": 2.5,
        "summary": "charge#1 attempt 1",
    }


async def test_a_timeline_limit_keeps_the_first_and_last_events(storage: Storage) -> None:
    await craft(storage, new_run("run_a", arguments=call(5, who="ana")), STEPS, gap=2.5)
    whole = await get_run_details(storage, "run_a", codec=Codec())
    assert whole.events == len(STEPS) + 1
    cut = await get_run_details(storage, "run_a", codec=Codec(), timeline_limit=5)
    assert cut.events == whole.events
    assert [e.seq for e in cut.timeline] == [1, 2, 3, whole.events - 1, whole.events]
    # The entries kept are the whole timeline's, times since the previous event included.
    kept = {e.seq for e in cut.timeline}
    assert cut.timeline == [e for e in whole.timeline if e.seq in kept]
    assert cut.steps == whole.steps  # attempts and spans always cover the whole log
    assert cut.spans == whole.spans
    roomy = await get_run_details(storage, "run_a", codec=Codec(), timeline_limit=1000)
    assert roomy.timeline == whole.timeline
    none = await get_run_details(storage, "run_a", codec=Codec(), timeline_limit=0)
    assert none.timeline == []
    with pytest.raises(InputError, match="limit"):
        await get_run_details(storage, "run_a", codec=Codec(), timeline_limit=-1)


async def test_the_json_of_a_run_in_detail(storage: Storage) -> None:
    await craft(
        storage, new_run("run_a", key="k-1"), STEPS[:2], status=RunStatus.COMPLETED, result=[1]
    )
    document = (await get_run_details(storage, "run_a", codec=Codec())).to_json()
    assert list(document) == [
        "run_id", "workflow", "status", "created_at", "updated_at", "completed_at", "wake_at",
        "idempotency_key", "parent_run_id", "recovery_count", "cancel_requested",
        "parent_close_policy", "continued_from", "continued_to", "queue", "waits_for_worker",
        "schedule_id", "schedule_slot_at", "tags", "damage", "args", "result", "error",
        "timeline", "steps", "children", "more_children", "waiting_hooks", "offered_steps",
        "spans", "marks", "events",
    ]  # fmt: skip
    assert document["events"] == 3
    assert document["status"] == "completed"
    assert document["offered_steps"] == []
    assert document["idempotency_key"] == "k-1"
    assert document["created_at"] == "2024-05-01T12:00:00+00:00"
    assert document["completed_at"] == "2024-05-01T12:00:03+00:00"
    assert document["args"] == {"args": [], "kwargs": {}}
    assert document["result"] == [1]
    assert document["steps"][0]["outcome"] == "retried"
    assert (document["children"], document["more_children"], document["waiting_hooks"]) == (
        [],
        False,
        [],
    )
    decoded = (await get_decoded_run(storage, "run_a", codec=Codec())).to_json()
    assert list(decoded)[-3:] == ["args", "result", "error"]
    assert decoded["result"] == [1]


async def test_values_this_process_cannot_decode_stay_encoded(storage: Storage) -> None:
    await craft(storage, new_run("run_a", arguments=GONE), status=RunStatus.COMPLETED, result=GONE)
    details = await get_run_details(storage, "run_a", codec=Codec())
    assert isinstance(details.arguments, Undecodable)
    assert isinstance(details.result, Undecodable)
    assert "gone.mod:Gone" in details.result.reason
    # The row itself is sound; JSON shows the values as stored.
    assert details.damage is None
    assert details.to_json()["result"] == GONE
    # A listing decodes nothing, so it never runs a stored pickle either.
    assert (await get_run(storage, "run_a")).damage is None


async def test_a_suspended_run_says_when_it_wakes_and_no_other_does(storage: Storage) -> None:
    await craft(storage, new_run("run_s"), status=RunStatus.SUSPENDED)
    await craft(storage, new_run("run_c"), status=RunStatus.COMPLETED)
    assert (await get_run(storage, "run_s")).wake_at == T0 + 86400
    completed = await get_run(storage, "run_c")
    assert completed.wake_at is None
    assert completed.took == 1.0


async def test_history_reads_the_run_then_its_events_after_a_seq(storage: Storage) -> None:
    await craft(storage, new_run("run_a"), STEPS[:3])
    history = await get_history(storage, "run_a")
    assert [e.seq for e in history.events] == [1, 2, 3, 4]
    assert history.run.status is RunStatus.PENDING
    later = await get_history(storage, "run_a", after_seq=2)
    assert [e.type for e in later.events] == [E.STEP_RETRYING, E.STEP_STARTED]
    assert later.to_json() == {
        "run_id": "run_a",
        "events": [
            {
                "run_id": "run_a",
                "seq": 3,
                "type": "step_retrying",
                "timestamp": "2024-05-01T12:00:02+00:00",
                "data": {"v": 1, **STEPS[1][1]},
            },
            {
                "run_id": "run_a",
                "seq": 4,
                "type": "step_started",
                "timestamp": "2024-05-01T12:00:03+00:00",
                "data": {"v": 1, **STEPS[2][1]},
            },
        ],
    }
    await log(storage, "run_a", [], after_seq=4, status=RunStatus.COMPLETED)
    assert (await get_history(storage, "run_a", after_seq=4)).run.status.is_terminal


@pytest.mark.parametrize(
    "read",
    [
        lambda s: get_run(s, "run_nope"),
        lambda s: get_history(s, "run_nope"),
        lambda s: get_run_details(s, "run_nope", codec=Codec()),
        lambda s: get_decoded_run(s, "run_nope", codec=Codec()),
    ],
    ids=["run", "history", "details", "decoded"],
)
async def test_an_unknown_run_is_run_not_found(storage: Storage, read: Any) -> None:
    with pytest.raises(RunNotFoundError) as raised:
        await read(storage)
    assert raised.value.run_id == "run_nope"


def _damage(db: str, sql: str, *params: object) -> None:
    connection = sqlite3.connect(db)
    try:
        with connection:  # commits; closing is ours (Python 3.13 warns of an unclosed one)
            connection.execute(sql, params)
    finally:
        connection.close()


async def test_a_damaged_row_and_an_unreadable_log_are_shown_not_raised(tmp_path: Any) -> None:
    storage = SQLiteStorage(str(tmp_path / "d.db"))
    await storage.open()
    try:
        await craft(storage, new_run("run_a"), STEPS[:2], status=RunStatus.FAILED, error=ERROR)
        await craft(storage, new_run("run_late"), status=RunStatus.COMPLETED, result=1)
        _damage(storage.path, "UPDATE runs SET args = ? WHERE run_id = 'run_a'", '{"args": [2')
        _damage(storage.path, "UPDATE events SET payload = ? WHERE seq = 2", '{"v": 1, "st')
        _damage(storage.path, "UPDATE runs SET completed_at = 1e20 WHERE run_id = 'run_late'")
        details = await get_run_details(storage, "run_a", codec=Codec())
        assert details.damage is not None
        row = details.run.damage  # the row's damage alone: a view reads no log
        assert row is not None
        assert row.startswith("corrupt runs.args of run 'run_a'")
        assert details.damage.startswith(f"{row}; corrupt events.payload of run 'run_a' (seq 2)")
        assert (details.timeline, details.steps, details.arguments) == ([], [], None)
        late = await get_run(storage, "run_late")
        assert late.damage is not None
        assert "runs.completed_at of run 'run_late' holds 1e+20" in late.damage
        assert late.to_json()["completed_at"] == "9999-12-31T23:59:59.999999+00:00"
    finally:
        await storage.close()
