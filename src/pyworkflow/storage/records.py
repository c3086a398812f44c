"""The records of the Storage protocol: what its methods take and return.

Plain frozen dataclasses, shared by every backend and by the engine, the executors and the CLI,
which read runs and events through them. Times are float seconds since the epoch from the
executor's clock; values (arguments, results, payloads) are JSON-compatible trees, stored and
returned as they are. The rules the methods keep with them are in ``protocol.py``.

They live by concept in private modules (runs and their logs, hooks, leases, schedules) and are
imported from here: this module is their public home, the one their type paths name.
"""

from __future__ import annotations

from pyworkflow.storage._hook_records import HookRecord, NewHook
from pyworkflow.storage._lease_records import (
    SUSPECT_RECOVERIES,
    OwnerRecord,
    StepLease,
)
from pyworkflow.storage._lease_records import StepOffer as StepOffer  # importable, not in __all__
from pyworkflow.storage._run_records import (
    AppendResult,
    AppendWrite,
    EventRecord,
    NewEvent,
    NewRun,
    RunCursor,
    RunRecord,
    RunSnapshot,
)
from pyworkflow.storage._schedule_records import ScheduleFire, ScheduleRecord

__all__ = [
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
]
