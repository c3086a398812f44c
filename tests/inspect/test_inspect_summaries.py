"""What each kind of event says in a run's timeline (``pyworkflow.inspect.summarize``)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from pyworkflow.events import EventType
from pyworkflow.inspect import summarize
from pyworkflow.serialization import Codec
from pyworkflow.storage import EventRecord

E = EventType
ERROR = {"type": "ValueError", "message": "bad", "traceback": "Traceback ..."}
CHILD = {"child_id": "child:kid#1", "child_run_id": "run_kid"}
encode = Codec().encode


def event(type_: EventType, /, **data: object) -> EventRecord:
    return EventRecord("run_1", 2, type_, {"v": 1, **data}, 1000.0)


# One line per kind of event, as `runs show` (and its --json "summary") has always read.
SUMMARIES: list[tuple[EventType, dict[str, Any], str]] = [
    (
        E.WORKFLOW_STARTED,
        {
            "workflow": "wf",
            "args": encode({"args": [1, "x"], "kwargs": {"flag": True}}),
            "idempotency_key": "k-1",
        },
        "wf(1, \"x\", flag=true) key='k-1'",
    ),
    (E.WORKFLOW_COMPLETED, {"result": encode((1, 2))}, "-> [1, 2]"),
    (E.WORKFLOW_FAILED, {"error": ERROR}, "ValueError: bad"),
    (E.WORKFLOW_CANCELLED, {"reason": "stop"}, "stop"),
    (E.WORKFLOW_CONTINUED_AS_NEW, {"new_run_id": "run_2"}, "continued as run_2"),
    (E.WORKFLOW_RESUMED, {}, "resumed by hand: failed steps retry afresh"),
    (
        E.WORKFLOW_INTERRUPTED,
        {
            "owner": "worker-a",
            "reason": "lease lapsed",
            "recovery": 1,
            "steps": [{"step_id": "charge#1", "attempt": 2}],
        },
        "taken over from worker-a (its lease lapsed), recovery 1; "
        "cut short, running again: charge#1 attempt 2",
    ),
    (E.STEP_STARTED, {"step_id": "charge#1", "name": "charge", "attempt": 2}, "charge#1 attempt 2"),
    (
        E.STEP_COMPLETED,
        {"step_id": "charge#1", "result": encode({"ok": True, "when": date(2024, 5, 1)})},
        'charge#1 -> {"ok": true, "when": "2024-05-01"}',
    ),
    (
        E.STEP_RETRYING,
        {"step_id": "charge#1", "attempt": 1, "error": ERROR, "retry_at": 1030.0},
        "charge#1 attempt 1 failed: ValueError: bad; retry in 30.0s",
    ),
    (E.STEP_FAILED, {"step_id": "ship#1", "error": ERROR}, "ship#1 ValueError: bad"),
    (
        E.SLEEP_STARTED,
        {"sleep_id": "sleep#1", "wake_at": 1000.0 + 7200},
        "sleep#1 for 2h00m, until 1970-01-01 02:16:40",
    ),
    (E.SLEEP_COMPLETED, {"sleep_id": "sleep#1"}, "sleep#1"),
    (E.SIDE_EFFECT_RECORDED, {"kind": "uuid4", "value": "0b1c"}, 'uuid4() = "0b1c"'),
    (E.CANCELLATION_REQUESTED, {"reason": "user asked"}, "user asked"),
    (
        E.HOOK_CREATED,
        {
            "hook_id": "hook:ok#1",
            "name": "ok",
            "nonce": "SECRET",
            "payload_type": "m:T",
            "expires_at": 1000.0 + 86400,
        },
        "hook:ok#1 waits for a payload of type m:T; expires in 1d00h, at 1970-01-02 00:16:40",
    ),
    (
        E.HOOK_RECEIVED,
        {"hook_id": "hook:ok#1", "payload": encode([1, 2])},
        "hook:ok#1 received [1, 2]",
    ),
    (E.HOOK_EXPIRED, {"hook_id": "hook:ok#1"}, "hook:ok#1 expired before a payload arrived"),
    (
        E.CHILD_WORKFLOW_STARTED,
        {**CHILD, "wait": False, "parent_close_policy": "abandon"},
        "child:kid#1 started as run_kid, not awaited, parent close policy abandon",
    ),
    (E.CHILD_WORKFLOW_COMPLETED, {**CHILD, "result": 3}, "child:kid#1 (run_kid) -> 3"),
    (
        E.CHILD_WORKFLOW_FAILED,
        {**CHILD, "error": ERROR},
        "child:kid#1 (run_kid) failed: ValueError: bad",
    ),
    (E.CHILD_WORKFLOW_CANCELLED, {**CHILD, "reason": "r"}, "child:kid#1 (run_kid) cancelled: r"),
    (
        E.CHILD_WORKFLOW_CANCEL_REQUESTED,
        {**CHILD, "cancel_id": "cancel:kid#1", "name": "kid", "reason": "not needed"},
        "child:kid#1 (run_kid) asked to cancel: not needed",
    ),
]


@pytest.mark.parametrize(
    ("kind", "data", "expected"), SUMMARIES, ids=[s[0].value for s in SUMMARIES]
)
def test_each_kind_of_event_reads_as_one_line(
    kind: EventType, data: dict[str, Any], expected: str
) -> None:
    assert summarize(event(kind, **data), Codec()) == expected


def test_every_event_type_has_its_own_summary() -> None:
    assert {kind for kind, _, _ in SUMMARIES} == set(EventType)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"reason": "redelivered", "steps": []},
            "a step task delivered again: the worker executing it died",
        ),
        ({"steps": []}, "taken on after a hand-back"),
        (
            {"owner": "w-1", "recovery": 2, "steps": []},
            "taken over from w-1 (its lease lapsed), recovery 2",
        ),
    ],
)
def test_each_way_a_run_is_taken_on_again(data: dict[str, Any], expected: str) -> None:
    assert summarize(event(E.WORKFLOW_INTERRUPTED, **data), Codec()) == expected


def test_a_patch_marker_reads_as_its_change_id() -> None:
    marker = event(E.SIDE_EFFECT_RECORDED, kind="patch", change_id="fix-1")
    assert summarize(marker, Codec()) == "patched('fix-1')"


def test_values_are_cut_short_and_undecodable_ones_say_why() -> None:
    long = event(E.HOOK_RECEIVED, hook_id="hook:ok#1", payload="x" * 100)
    summary = summarize(long, Codec())
    assert summary.startswith('hook:ok#1 received "xxx')
    assert summary.endswith("...")
    assert len(summary) == len("hook:ok#1 received ") + 60
    gone = {"__pw__": "dataclass", "cls": "gone.mod:Gone", "fields": {}}
    undecodable = summarize(event(E.STEP_COMPLETED, step_id="s#1", result=gone), Codec())
    assert undecodable.startswith("s#1 -> <cannot decode here: ")
    assert "gone.mod:Gone" in undecodable


def test_summaries_of_payloads_of_another_shape() -> None:
    codec = Codec()
    # A payload this version does not know the shape of reads as its fields, never fails, and
    # never shows a hook's nonce (with it, the run id is enough to derive an unsigned token).
    odd = event(E.HOOK_CREATED, name="approval", nonce="secret-ish", expires_at="soon")
    assert summarize(odd, codec) == 'name="approval", expires_at="soon"'
    assert summarize(event(E.WORKFLOW_CONTINUED_AS_NEW), codec) == ""
    assert summarize(event(E.CHILD_WORKFLOW_CANCELLED, **CHILD), codec) == (
        "child:kid#1 (run_kid) cancelled"
    )
    without_reason = event(E.CHILD_WORKFLOW_CANCEL_REQUESTED, **CHILD, reason=None)
    assert summarize(without_reason, codec) == "child:kid#1 (run_kid) asked to cancel"
