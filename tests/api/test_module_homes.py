"""Modules split by concept keep their public home: the same ``__all__``, names and type paths.

``pyworkflow.config``, ``pyworkflow.storage.records``, ``pyworkflow.serialization``,
``pyworkflow.storage.protocol`` and ``pyworkflow.executors`` hold their code in private modules
(``pyworkflow.storage.sql`` is pinned too); code written against them imports from them as
before, and a record's class names its public home, as the codec writes it into event logs.
"""

import importlib
import inspect

import pytest

from pyworkflow.serialization import Codec
from pyworkflow.storage.records import NewRun, StepOffer

# Each module's __all__ as it was before the split, in its order.
HOMES = {
    "pyworkflow.config": "DEFAULT_STORAGE EXECUTORS build_codec build_storage client_only "
    "configure configured_modules dispatch_grace engine_settings get_config served_queues "
    "sweep_interval",
    "pyworkflow.storage.records": "SUSPECT_RECOVERIES AppendResult AppendWrite EventRecord "
    "HookRecord NewEvent NewHook NewRun OwnerRecord RunCursor RunRecord RunSnapshot "
    "ScheduleFire ScheduleRecord StepLease",
    "pyworkflow.serialization": "DEFAULT_MAX_PAYLOAD_SIZE Codec",
    "pyworkflow.storage.protocol": "ChangeNotifier Storage",
    "pyworkflow.storage.sql": "COMPOSITE_STEPS Row Script Session SqlStorage",
    "pyworkflow.executors": "Clock EngineSettings Executor LocalExecutor SystemClock",
    "pyworkflow.executors.local": "LocalExecutor",
    "pyworkflow.storage.streams": "ENDED_STATUSES END_STATUSES SIGNAL_WINDOW DeliveryBatch "
    "DeliveryRecord NewSignal SignalRecord StreamRunRecord StreamSnapshot StreamStore "
    "SubscriptionOutcome SubscriptionRecord SubscriptionSpec aggregate_status batch_payload "
    "check_end_status plan_deliveries",
}


@pytest.mark.parametrize("module_name", sorted(HOMES))
def test_a_split_module_keeps_its_public_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__all__ == HOMES[module_name].split()
    undocumented = [
        name
        for name in module.__all__
        if (inspect.isclass(obj := getattr(module, name)) or inspect.isfunction(obj))
        and not (obj.__doc__ or "").strip()
    ]
    assert undocumented == []


def test_a_record_class_names_its_public_home() -> None:
    records = importlib.import_module("pyworkflow.storage.records")
    classes = [obj for name in records.__all__ if inspect.isclass(obj := getattr(records, name))]
    assert {cls.__module__ for cls in [*classes, StepOffer]} == {"pyworkflow.storage.records"}
    streams = importlib.import_module("pyworkflow.storage.streams")
    classes = [obj for name in streams.__all__ if inspect.isclass(obj := getattr(streams, name))]
    assert {cls.__module__ for cls in classes} == {"pyworkflow.storage.streams"}


def test_the_codec_writes_a_record_under_its_public_path() -> None:
    codec = Codec()
    record = NewRun(run_id="r1", workflow_name="w", args=None, started_payload={}, now=0.0)
    tree = codec.encode(record.initial_record())
    assert tree["cls"] == "pyworkflow.storage.records:RunRecord"
    assert codec.decode(tree) == record.initial_record()
