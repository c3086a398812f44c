"""Modules split by concept keep their public home: the same ``__all__``, names and type paths.

``pyworkflow.config``, ``pyworkflow.storage.records`` and ``pyworkflow.serialization`` hold
their code in private modules; code written against them imports from them as before, and a
record's class names its public home, as the codec writes it into event logs.
"""

import importlib
import inspect

import pytest

from pyworkflow.events import RunStatus
from pyworkflow.serialization import Codec
from pyworkflow.storage.records import RunRecord, StepOffer

HOMES = {
    "pyworkflow.config": [
        "DEFAULT_STORAGE",
        "EXECUTORS",
        "build_codec",
        "build_storage",
        "client_only",
        "configure",
        "configured_modules",
        "dispatch_grace",
        "engine_settings",
        "get_config",
        "served_queues",
        "sweep_interval",
    ],
    "pyworkflow.storage.records": [
        "SUSPECT_RECOVERIES",
        "AppendResult",
        "AppendWrite",
        "EventRecord",
        "HookRecord",
        "NewEvent",
        "NewHook",
        "NewRun",
        "OwnerRecord",
        "RunCursor",
        "RunRecord",
        "RunSnapshot",
        "ScheduleFire",
        "ScheduleRecord",
        "StepLease",
    ],
    "pyworkflow.serialization": ["DEFAULT_MAX_PAYLOAD_SIZE", "Codec"],
}


@pytest.mark.parametrize("module_name", sorted(HOMES))
def test_a_split_module_keeps_its_public_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__all__ == HOMES[module_name]
    undocumented = [
        name
        for name in module.__all__
        if (inspect.isclass(obj := getattr(module, name)) or inspect.isfunction(obj))
        and not (obj.__doc__ or "").strip()
    ]
    assert undocumented == []


def test_a_record_class_names_its_public_home() -> None:
    records = importlib.import_module("pyworkflow.storage.records")
    for name in records.__all__:
        if inspect.isclass(cls := getattr(records, name)):
            assert cls.__module__ == "pyworkflow.storage.records", name
    assert StepOffer.__module__ == "pyworkflow.storage.records"


def test_the_codec_writes_a_record_under_its_public_path() -> None:
    codec = Codec()
    record = RunRecord(
        run_id="r1",
        workflow_name="w",
        status=RunStatus.COMPLETED,
        args=None,
        result=None,
        error=None,
        idempotency_key=None,
        parent_run_id=None,
        created_at=0.0,
        updated_at=0.0,
        completed_at=None,
        wake_at=None,
        lease_owner=None,
        lease_expires_at=None,
        recovery_count=0,
        last_seq=1,
        signal_seq=0,
        cancel_requested=False,
        cancel_reason=None,
    )
    tree = codec.encode(record)
    assert tree["cls"] == "pyworkflow.storage.records:RunRecord"
    assert codec.decode(tree) == record
