"""The process's runtime: its opened storage, codec and executor, built from the settings.

``get_runtime()`` builds it lazily on first use, on the running event loop, once however many
callers ask at the same moment (each would otherwise claim and drive runs of its own); a new
event loop gets a new executor over the same storage, and a ``configure()`` since the last
build makes the next call build anew. ``shutdown()`` hands the runs back and closes storage.
The settings themselves are ``pyworkflow.config``'s.

The Celery executor is built by its own package (``executors/celery/configured.py``), imported
only when configured: Celery is an optional dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pyworkflow import config, registry
from pyworkflow._heap import freeze_startup_heap
from pyworkflow.determinism import refuse_client_call
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.executors.local import LocalExecutor
from pyworkflow.executors.protocol import Executor
from pyworkflow.serialization import Codec
from pyworkflow.storage import Storage

__all__ = [
    "Runtime",
    "built_storage",
    "forget_inherited",
    "get_runtime",
    "shutdown",
    "use_runtime",
]


@dataclass
class Runtime:
    """The storage, codec and executor of this process on one event loop."""

    storage: Storage
    codec: Codec
    executor: Executor
    loop: asyncio.AbstractEventLoop


_storage: Storage | None = None
_runtime: Runtime | None = None
_built_at = -1  # the settings' generation the runtime was built at (config.generation())
# Held while a runtime is built, so that concurrent first callers share one (per event loop).
_building: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None


async def get_runtime() -> Runtime:
    """The runtime for the running event loop, built and opened on first use."""
    global _building
    loop = asyncio.get_running_loop()
    if _runtime is not None and _runtime.loop is loop and _built_at == config.generation():
        return _runtime
    refuse_client_call()  # workflow code runs on a loop of its own: never a runtime's loop
    if _building is None or _building[0] is not loop:
        _building = (loop, asyncio.Lock())
    async with _building[1]:
        # Callers that waited here find the runtime the first one built: one executor per
        # loop, not one per concurrent caller (each would claim and drive runs of its own).
        if _runtime is not None and _runtime.loop is loop and _built_at == config.generation():
            return _runtime
        return await _build_runtime(loop)


async def _build_runtime(loop: asyncio.AbstractEventLoop) -> Runtime:
    global _storage, _runtime, _built_at
    if _built_at != config.generation():
        _storage = None  # configure() chose anew: the old storage is the old settings'
    # Every setting is read before anything is built: a bad value leaves nothing behind.
    generation = config.generation()
    executor_name = config.executor_name()
    freeze = config.gc_freeze()
    retention = config.retention()
    client_only = config.client_only()
    queues = config.served_queues()
    config.start_tracing_from_env()
    if _storage is None:
        _storage = config.build_storage()
    await _storage.open()
    registry.import_modules(config.configured_modules())
    codec = config.build_codec()
    executor: Executor
    if executor_name == "celery":
        executor = _celery_executor(_storage, codec)
    else:
        executor = LocalExecutor(
            _storage,
            codec,
            settings=config.engine_settings(),
            retention=retention,
            drain_seconds=config.drain_seconds(),
            queues=queues,
            client_only=client_only,
        )
    _runtime = Runtime(storage=_storage, codec=codec, executor=executor, loop=loop)
    _built_at = generation
    if freeze:
        freeze_startup_heap()  # after the modules and the storage: they live as long
    return _runtime


def _celery_executor(storage: Storage, codec: Codec) -> Executor:
    try:
        from pyworkflow.executors.celery.configured import configured_executor
    except ImportError as exc:
        raise ConfigurationError(
            f"executor 'celery' needs Celery, which is not installed ({exc}); "
            "pip install 'pyworkflow-durable[celery]'"
        ) from exc
    return configured_executor(storage, codec)


def built_storage() -> Storage | None:
    """The storage of the runtime built for the current settings, if one was built."""
    return _storage if _built_at == config.generation() else None


def forget_inherited() -> None:
    """In a process just forked: drop the parent's storage and runtime without closing them.

    Their connections belong to the parent; this process opens its own on first use.
    """
    global _storage, _runtime
    _storage, _runtime = None, None


async def shutdown() -> None:
    """Hand back this process's runs and close its storage (also safe to skip)."""
    global _storage, _runtime
    runtime, _runtime = _runtime, None
    # A runtime whose loop has closed (``asyncio.run`` returned) has nothing left to hand back:
    # its loop cancelled the drivers as it ended. Its executor's tasks cannot be awaited here.
    if runtime is not None and not runtime.loop.is_closed():
        await runtime.executor.shutdown()
    if _storage is not None:
        await _storage.close()
        _storage = None


@contextlib.contextmanager
def use_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """Route the public API (``start``, ``run``, the queries) to ``runtime`` inside the block.

    The test toolkit's hook: a ``WorkflowEnvironment`` installs its own storage, executor and
    virtual clock here, and on exit the process's settings and runtime are put back as they
    were, so one test's environment does not leak into another test's ``configure()`` state.
    Calling ``configure()`` inside the block drops the installed runtime.
    """
    global _storage, _runtime, _built_at
    saved: tuple[Any, Storage | None, Runtime | None, int] = (
        config.snapshot(),
        _storage,
        _runtime,
        _built_at,
    )
    _storage, _runtime, _built_at = runtime.storage, runtime, config.generation()
    try:
        yield runtime
    finally:
        settings, _storage, _runtime, _built_at = saved
        config.restore(settings)
