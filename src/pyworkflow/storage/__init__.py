"""Where runs and their event logs live: the Storage protocol and its backends.

``memory://`` keeps everything in the process (tests, scripts); ``sqlite:///path.db`` is one
file on one machine, shared by its processes; ``postgresql://user@host/db`` is one database for
any number of workers on any machines (``pip install 'pyworkflow-durable[postgres]'``). Pass
any of them as an object or a URL to ``configure(storage=...)``; ``copy_runs`` moves every run,
in flight or ended, from one to another (``pyworkflow db copy``).

Example:
    >>> storage = storage_from_url("sqlite:///pyworkflow.db")
    >>> storage.url
    'sqlite:///pyworkflow.db'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyworkflow.storage._backends import backend_for, backend_named
from pyworkflow.storage.copying import CopyReport, copy_runs
from pyworkflow.storage.memory import MemoryStorage
from pyworkflow.storage.protocol import ChangeNotifier, Storage
from pyworkflow.storage.records import (
    AppendResult,
    AppendWrite,
    EventRecord,
    NewEvent,
    NewRun,
    RunCursor,
    RunRecord,
    RunSnapshot,
    ScheduleRecord,
    StepLease,
    StepOffer,
)
from pyworkflow.storage.seed_backends import (
    FileStorageBackend,
    InMemoryStorageBackend,
    SQLiteStorageBackend,
    postgres_storage_backend,
)
from pyworkflow.storage.sqlite import SQLiteStorage
from pyworkflow.storage.streams import (
    DeliveryBatch,
    DeliveryRecord,
    NewSignal,
    SignalRecord,
    StreamRunRecord,
    StreamSnapshot,
    StreamStore,
    SubscriptionOutcome,
    SubscriptionRecord,
    SubscriptionSpec,
)

if TYPE_CHECKING:
    from pyworkflow.storage.postgres import PostgresStorage

__all__ = [
    "AppendResult",
    "AppendWrite",
    "ChangeNotifier",
    "CopyReport",
    "DeliveryBatch",
    "DeliveryRecord",
    "EventRecord",
    "FileStorageBackend",
    "InMemoryStorageBackend",
    "MemoryStorage",
    "NewEvent",
    "NewRun",
    "NewSignal",
    "PostgresStorage",
    "PostgresStorageBackend",
    "RunCursor",
    "RunRecord",
    "RunSnapshot",
    "SQLiteStorage",
    "SQLiteStorageBackend",
    "ScheduleRecord",
    "SignalRecord",
    "StepLease",
    "StepOffer",
    "Storage",
    "StreamRunRecord",
    "StreamSnapshot",
    "StreamStore",
    "SubscriptionOutcome",
    "SubscriptionRecord",
    "SubscriptionSpec",
    "copy_runs",
    "storage_from_url",
]


def __getattr__(name: str) -> Any:
    # PostgresStorage needs asyncpg, an optional dependency: imported on first use only.
    if name == "PostgresStorage":
        return backend_named("postgres").storage_class()
    if name == "PostgresStorageBackend":  # the documentation's name (storage/seed_backends.py)
        return postgres_storage_backend()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def storage_from_url(url: str) -> Storage:
    """Build the storage a URL names; it still has to be opened.

    Args:
        url: ``memory://`` or ``sqlite:///relative.db`` / ``sqlite:////absolute/path.db``,
            optionally with ``?synchronous=NORMAL`` (faster; a power cut may lose the last
            commits, a killed process loses nothing); ``postgresql://user:password@host/db``
            (also ``postgresql+asyncpg://``), with options ``pool_size``, ``statement_timeout``,
            ``create`` and ``auto_upgrade`` (see :class:`PostgresStorage`).

    Returns:
        An unopened storage.

    Raises:
        ConfigurationError: an unknown scheme, or a backend this version does not ship.

    Example:
        >>> type(storage_from_url("memory://")).__name__
        'MemoryStorage'
    """
    # The scheme table (``_backends.BACKENDS``) says which backend serves the URL; that
    # backend's class reads the rest of it.
    return backend_for(url).from_url(url)
