"""The per-call ``storage=`` and ``runtime=`` arguments of the pyworkflow documentation.

Code written for that documentation passes ``storage=storage`` to client calls (``start``,
``get_workflow_run``, ``resume_hook``, ``create_schedule`` ...) and ``runtime=`` to
``start``. pyworkflow uses one storage and one executor per process, chosen by
``configure()``, so these arguments are accepted when they name what is configured (the same
object, or a storage of the same URL) and refused otherwise, with an ``InputError`` saying to
choose them with ``configure()``: a run silently stored elsewhere than asked would be worse.
"""

from __future__ import annotations

from typing import Any

from pyworkflow import config
from pyworkflow.exceptions import InputError
from pyworkflow.runtime import get_runtime

__all__ = ["same_runtime", "same_storage"]


async def same_storage(storage: Any) -> None:
    """Refuse a ``storage=`` argument that is not this process's storage.

    The same object, or a URL or storage object of the same URL (a fresh
    ``FileStorageBackend`` of the configured directory), is this process's storage; a
    second in-memory storage is not (it would hold other runs).

    Raises:
        InputError: ``storage`` names another storage.
    """
    if storage is None:
        return
    runtime = await get_runtime()
    current = runtime.storage
    # A test environment's runtime counts the calls to the storage it was given (``wraps``).
    if storage is current or storage is getattr(current, "wraps", None):
        return
    url = storage if isinstance(storage, str) else getattr(storage, "url", None)
    if url == current.url and not url.startswith("memory:"):
        return
    raise InputError(
        f"storage={storage!r} is not this process's storage ({current.url}); "
        "pyworkflow uses one storage per process: pass it to configure(storage=...)"
    )


def same_runtime(runtime: str | None) -> None:
    """Refuse a ``runtime=`` argument other than the configured executor (local, celery).

    Raises:
        InputError: ``runtime`` names another executor, or none.
    """
    if runtime is None:
        return
    configured = config.executor_name()
    if runtime != configured:
        raise InputError(
            f"runtime={runtime!r} is not this process's executor ({configured!r}); "
            "pyworkflow uses one executor per process: choose it with configure(executor=...)"
        )
