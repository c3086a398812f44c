"""Spellings from the pyworkflow documentation, mapped onto pyworkflow's own names.

Code written for that documentation imports these from ``pyworkflow``; each is a thin
mapping, and our own names stay the primary ones:

- ``reset_config()``: forget every ``configure()`` setting (``config.reset``) and let the
  process's runtime be built anew at the next call;
- ``get_config()``: the settings ``configure()`` was given, as a read-only ``Config``;
- ``get_workflow_run_by_idempotency_key(key)``: the run an idempotency key started, or None;
- ``get_storage()``: this process's storage object.

The other spellings live beside what they name: the storage class names
(``pyworkflow.storage.InMemoryStorageBackend`` ...: ``storage/seed_backends.py``),
``storage=`` on the client calls, ``WorkflowEvent.sequence`` and the event data keys
(``step_name`` ...), ``ChildWorkflowHandle.child_run_id``, ``WorkflowRun.continued_from_run_id``
/ ``continued_to_run_id``, ``ChildWorkflowFailedError.child_workflow_name`` / ``error``, and the
decorator options (``@workflow(durable=, tags=, recover_on_worker_loss=,
max_recovery_attempts=, context_class=)``, ``@step(metadata=)``, both without parentheses).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from pyworkflow import config
from pyworkflow._run_views import WorkflowRun, run_view
from pyworkflow.exceptions import InputError
from pyworkflow.per_call import same_storage
from pyworkflow.runtime import built_storage, get_runtime
from pyworkflow.storage.protocol import Storage
from pyworkflow.storage.records import RunCursor

_PAGE = 1000

__all__ = [
    "Config",
    "get_config",
    "get_storage",
    "get_workflow_run_by_idempotency_key",
    "reset_config",
]


class Config(Mapping[str, Any]):
    """The settings given to ``configure()`` (None where none was given), read-only.

    Readable as a mapping (``cfg["storage"]``) and by attribute (``cfg.storage``).
    """

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = MappingProxyType(dict(values))

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"Config({dict(self._values)!r})"


def reset_config() -> None:
    """Forget every ``configure()`` setting: the environment and the defaults apply again."""
    config.reset()


def get_config() -> Config:
    """What ``configure()`` was given, by setting name (``storage``, ``default_durable`` ...).

    Example:
        >>> configure(default_durable=False)
        >>> get_config().default_durable
        False
    """
    values = config.current()
    values["default_durable"] = config.default_durable()
    # Their names for two of ours.
    values["default_runtime"] = values["executor"]
    values["celery_broker"] = values["broker"]
    return Config(values)


def get_storage() -> Storage:
    """This process's storage object, as ``storage=`` arguments and storage calls want it.

    The object given to ``configure(storage=...)``, else the one the runtime opened, else a
    new (unopened) storage for the configured URL, which the runtime's equals by URL.

    Example:
        >>> chain = await get_workflow_chain(run_id, storage=get_storage())
    """
    given = config.current()["storage"]
    if given is not None and not isinstance(given, str):
        chosen: Storage = given
        return chosen
    return built_storage() or config.build_storage()


async def get_workflow_run_by_idempotency_key(
    idempotency_key: str, *, storage: Any = None
) -> WorkflowRun | None:
    """The run started with ``idempotency_key``, or None if there is none.

    Raises:
        InputError: ``idempotency_key`` is not a non-empty string.
    """
    if not isinstance(idempotency_key, str) or not idempotency_key:
        raise InputError(f"an idempotency key is a non-empty string, not {idempotency_key!r}")
    await same_storage(storage)
    runtime = await get_runtime()
    # Storage has no lookup by key yet: pages through the runs, newest first (a full scan at
    # worst; fine for scripts, not for hot paths).
    cursor = None
    while True:
        page = await runtime.storage.list_runs(limit=_PAGE, before=cursor)
        for record in page:
            if record.idempotency_key == idempotency_key:
                return run_view(record, runtime.codec)
        if len(page) < _PAGE:
            return None
        cursor = RunCursor(page[-1].created_at, page[-1].run_id)
