"""Typed hooks: ``define_hook(name, PayloadType)`` validates payloads at ``resume_hook``.

Dataclasses (nested too), TypedDicts and pydantic models: a fitting payload arrives as the type;
a bad one is refused at the caller with ``InvalidHookPayloadError`` naming the field, and
nothing is written (the hook still waits, the log and the run's signals are unchanged). On the
virtual clock and memory storage (conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pyworkflow
from pyworkflow import HookStatus, InvalidHookPayloadError, RunStatus, define_hook, resume_hook
from pyworkflow.testing import WorkflowEnvironment
from workers import subprocess_env

from .hook_payloads import Approval, Reviewer
from .hook_workflows import typed_dataclass, typed_dict, typed_pydantic
from .recording import token
from .run_log import events_of
from .waits import hook_token, wait_suspended

TYPED: dict[str, tuple[Any, str, Any, list[Any]]] = {
    "dataclass": (
        typed_dataclass,
        "approval",
        {"approved": True, "reviewer": {"name": "ana", "level": 2}, "amount": 12},
        ["Approval", True, "Reviewer", "ana", 12.0],
    ),
    "typeddict": (
        typed_dict,
        "shipping",
        {"address": "1 Main St", "count": 3},
        ["dict", {"address": "1 Main St", "count": 3}],
    ),
    "pydantic": (
        typed_pydantic,
        "rating",
        {"score": 5, "comment": "great"},
        ["Rating", 5, "great"],
    ),
}


@pytest.mark.parametrize("kind", list(TYPED))
async def test_a_typed_hook_delivers_a_validated_payload(
    env: WorkflowEnvironment, kind: str
) -> None:
    wf, name, payload, expected = TYPED[kind]
    tok = token()
    run_id = await pyworkflow.start(wf, tok)
    info = await resume_hook(await hook_token(tok, name, run_id), payload)
    assert info.payload_type is not None
    assert info.payload_type.startswith("engine.hook_payloads:")
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == expected


async def test_a_typed_hook_takes_an_instance_of_its_type(env: WorkflowEnvironment) -> None:
    tok = token()
    run_id = await pyworkflow.start(typed_dataclass, tok)
    value = Approval(approved=False, reviewer=Reviewer("bo", 1), amount=3.5)
    await resume_hook(await hook_token(tok, "approval", run_id), value)
    result = await pyworkflow.get_workflow_result(run_id, timeout=10)
    assert result == ["Approval", False, "Reviewer", "bo", 3.5]


BAD_PAYLOADS = [
    ("dataclass", {"approved": True}, "reviewer"),
    ("dataclass", {"approved": "yes", "reviewer": {"name": "a", "level": 1}}, "approved"),
    ("dataclass", {"approved": True, "reviewer": {"name": "a", "level": "high"}}, "reviewer.level"),
    ("dataclass", {"approved": True, "reviewer": {"name": "a", "level": 1}, "x": 1}, "x"),
    ("dataclass", "approved", ""),
    ("typeddict", {"address": "1 Main St", "count": "3"}, "count"),
    ("typeddict", {"count": 3}, "address"),
    ("pydantic", {"score": "excellent", "comment": "c"}, "score"),
    ("pydantic", {"score": 4}, "comment"),
]


@pytest.mark.parametrize(("kind", "payload", "field"), BAD_PAYLOADS)
async def test_a_bad_typed_payload_is_refused_naming_the_field(
    env: WorkflowEnvironment, kind: str, payload: Any, field: str
) -> None:
    await refuse_and_check(env, kind, payload, field)


@pytest.mark.parametrize("kind", list(TYPED))
async def test_a_refused_payload_writes_nothing(env: WorkflowEnvironment, kind: str) -> None:
    _, payload, field = next(bad for bad in BAD_PAYLOADS if bad[0] == kind)
    await refuse_and_check(env, kind, payload, field)


async def refuse_and_check(env: WorkflowEnvironment, kind: str, payload: Any, field: str) -> None:
    storage = env.storage
    wf, name, good, expected = TYPED[kind]
    tok = token()
    run_id = await pyworkflow.start(wf, tok)
    hook_tok = await hook_token(tok, name, run_id)
    await wait_suspended(env, run_id)
    events = await events_of(run_id)
    rows = await storage.list_hooks(run_id=run_id)
    signals = (await storage.get_run(run_id)).signal_seq  # type: ignore[union-attr]

    with pytest.raises(InvalidHookPayloadError) as info:
        await resume_hook(hook_tok, payload)

    assert info.value.field == field
    assert info.value.hook_name == name
    if field:
        assert repr(field) in str(info.value)
    assert await storage.list_hooks(run_id=run_id) == rows
    assert rows[0].status is HookStatus.WAITING
    assert await events_of(run_id) == events
    assert (await storage.get_run(run_id)).signal_seq == signals, "the run was not signalled"  # type: ignore[union-attr]
    assert (await pyworkflow.get_workflow_run(run_id)).status is RunStatus.SUSPENDED
    # The refusal spent nothing: the right payload still goes through.
    await resume_hook(hook_tok, good)
    assert await pyworkflow.get_workflow_result(run_id, timeout=10) == expected


class LocalPayload:
    pass


def test_define_hook_refuses_a_type_it_cannot_validate() -> None:
    with pytest.raises(InvalidHookPayloadError, match="not a dataclass, TypedDict or pydantic"):
        define_hook("plain", LocalPayload)
    with pytest.raises(InvalidHookPayloadError, match="not a dataclass"):
        define_hook("number", int)

    from dataclasses import dataclass

    @dataclass
    class Inner:
        x: int

    with pytest.raises(InvalidHookPayloadError, match="module level"):
        define_hook("inner", Inner)


SCRIPT = """
from dataclasses import dataclass

from pyworkflow import define_hook


@dataclass
class Decision:
    approved: bool


decision = define_hook("decision", Decision)
print("defined")
"""


@pytest.mark.slow  # scripts run by a fresh interpreter
def test_a_payload_type_of_the_script_being_run_is_warned_about(tmp_path: Path) -> None:
    (tmp_path / "approvals.py").write_text(SCRIPT)
    ran = subprocess.run(
        [sys.executable, "approvals.py"],
        cwd=tmp_path,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert ran.stdout == "defined\n"  # a warning, not an error: in this process it works
    warning = ran.stderr
    assert "approvals.py:12: UserWarning" in warning  # where define_hook was called
    assert "'__main__:Decision'" in warning
    assert "no other process can import" in warning
    assert "move Decision into a module" in warning
    # Imported as a module, the type is recorded by its module's name: nothing to warn about.
    imported = subprocess.run(
        [sys.executable, "-c", "import approvals"],
        cwd=tmp_path,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert imported.stderr == ""
