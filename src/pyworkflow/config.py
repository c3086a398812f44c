"""``configure()``: which storage, executor and secret key this process uses.

Every setting also comes from a ``PYWORKFLOW_*`` environment variable (an explicit
``configure`` argument wins): ``PYWORKFLOW_STORAGE`` (default ``sqlite:///pyworkflow.db``),
``PYWORKFLOW_EXECUTOR`` (``local`` or ``celery``), ``PYWORKFLOW_BROKER`` (the Celery broker),
``PYWORKFLOW_DISPATCH_GRACE`` (seconds, Celery), ``PYWORKFLOW_SECRET_KEY``,
``PYWORKFLOW_MODULES`` (comma separated), ``PYWORKFLOW_ALLOW_PICKLE`` (``1``/``0``),
``PYWORKFLOW_TRACING`` (``1``/``0``), ``PYWORKFLOW_GC_FREEZE`` (``1``/``0``, see
``pyworkflow._heap``), ``PYWORKFLOW_LEASE_SECONDS`` and
``PYWORKFLOW_MAX_RECOVERIES`` (for workers started by a command line that has no such option,
such as ``celery worker``).

``PYWORKFLOW_RETENTION`` (a duration such as ``30d``) has the local executor delete runs that
ended longer ago than that, in the background (``configure(retention=...)``).

The runtime (opened storage, codec, executor) is built lazily on first use, on the running
event loop, once however many callers ask at the same moment; a new event loop gets a new
executor over the same storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pyworkflow import registry
from pyworkflow._engine import tracing as engine_tracing
from pyworkflow._engine.engine import EngineSettings
from pyworkflow._heap import freeze_startup_heap
from pyworkflow.determinism import refuse_client_call
from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import ConfigurationError, InvalidDurationError
from pyworkflow.executors.local import LocalExecutor
from pyworkflow.executors.protocol import Executor
from pyworkflow.serialization import Codec
from pyworkflow.storage import Storage, storage_from_url

__all__ = ["Runtime", "configure", "get_runtime", "shutdown", "use_runtime"]

DEFAULT_STORAGE = "sqlite:///pyworkflow.db"
CELERY_HORIZON_SECONDS = 1.0
"""The Celery executor's ``horizon_seconds`` unless configured."""
_EXECUTORS = ("local", "celery")


@dataclass
class _Settings:
    storage: Storage | str | None = None
    executor: str | None = None
    secret_key: str | bytes | None = None
    modules: list[str] = field(default_factory=list)
    allow_pickle: bool | None = None
    engine: EngineSettings = field(default_factory=EngineSettings)
    # The engine knobs given to configure(): the environment fills in only the others.
    engine_given: frozenset[str] = frozenset()
    retention: float | None = None
    tracing: bool | None = None
    broker: str | None = None
    celery_app: Any = None
    dispatch_grace: float | None = None
    gc_freeze: bool | None = None
    drain_seconds: float | None = None


@dataclass
class Runtime:
    """The storage, codec and executor of this process on one event loop."""

    storage: Storage
    codec: Codec
    executor: Executor
    loop: asyncio.AbstractEventLoop


_settings = _Settings()
_made_apps: dict[str | None, Any] = {}  # Celery apps made for configure(broker=...)
_storage: Storage | None = None
_runtime: Runtime | None = None
# Held while a runtime is built, so that concurrent first callers share one (per event loop).
_building: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None


def configure(
    *,
    storage: Storage | str | None = None,
    executor: str | None = None,
    secret_key: str | bytes | None = None,
    modules: list[str] | None = None,
    allow_pickle: bool | None = None,
    lease_seconds: float | None = None,
    horizon_seconds: float | None = None,
    max_recoveries: int | None = None,
    retention: str | float | timedelta | None = None,
    tracing: bool | None = None,
    broker: str | None = None,
    celery_app: Any = None,
    dispatch_grace: float | None = None,
    gc_freeze: bool | None = None,
    drain_seconds: float | None = None,
) -> None:
    """Choose storage, executor and security settings for this process.

    Example:
        >>> configure(storage="sqlite:///orders.db", modules=["myapp.workflows"])

    Args:
        storage: a Storage object or URL: ``memory://``, ``sqlite:///path.db``.
        executor: ``"local"`` (the default) or ``"celery"``.
        secret_key: signs pickled payloads; a payload failing the check is refused.
        modules: import paths holding workflows, for workers and the CLI.
        allow_pickle: False refuses values that need pickle.
        lease_seconds: how long a worker's claim on a run lasts without a heartbeat.
        horizon_seconds: a run waiting longer than this lets go of its coroutine.
        max_recoveries: take-overs without progress before a run is failed.
        retention: a duration (``"30d"``); the local executor then deletes runs that ended
            longer ago than that, with their events, at start and hourly (see ``prune_runs``).
        tracing: True emits OpenTelemetry spans for run turns and step attempts (the ``otel``
            extra; see ``pyworkflow.tracing``), False stops them.
        broker: with ``executor="celery"``: the broker URL (``redis://...``, ``amqp://...``).
        celery_app: with ``executor="celery"``: your own Celery app, instead of one made for
            ``broker`` (``pyworkflow.executors.celery.install(app)`` adds our tasks to it).
        dispatch_grace: with ``executor="celery"``: seconds a sent task may wait in the
            broker's queue before storage sends it again (default 60).
        gc_freeze: True (the default) freezes the objects alive when the process's first
            runtime starts, so that garbage collections stop walking them (``pyworkflow._heap``
            says why and what it costs); False leaves the collector alone.
        drain_seconds: at ``shutdown()`` (a worker's SIGTERM), how long the step attempts
            running then may take to end and be logged before they are cancelled (default 10).

    Raises:
        ConfigurationError: an unknown executor or storage URL scheme, or ``tracing=True``
            without OpenTelemetry installed.
        InvalidDurationError: ``retention`` is not a duration.
    """
    global _settings, _storage, _runtime
    keep = None if retention is None else parse_duration(retention)
    if executor is not None and executor not in _EXECUTORS:
        raise ConfigurationError(
            f"unknown executor {executor!r}; this version has: {', '.join(_EXECUTORS)}"
        )
    if isinstance(storage, str):
        storage_from_url(storage)  # validate the scheme now, not at first use
    if tracing is not None:
        _set_tracing(tracing, source="configure(tracing=True)")
    knobs: dict[str, Any] = {
        "lease_seconds": lease_seconds,
        "horizon_seconds": horizon_seconds,
        "max_recoveries": max_recoveries,
    }
    engine = dataclasses.replace(
        _settings.engine, **{k: v for k, v in knobs.items() if v is not None}
    )
    _settings = _Settings(
        storage=storage if storage is not None else _settings.storage,
        executor=executor if executor is not None else _settings.executor,
        secret_key=secret_key if secret_key is not None else _settings.secret_key,
        modules=list(modules) if modules is not None else _settings.modules,
        allow_pickle=allow_pickle if allow_pickle is not None else _settings.allow_pickle,
        engine=engine,
        engine_given=_settings.engine_given | {k for k, v in knobs.items() if v is not None},
        retention=keep if keep is not None else _settings.retention,
        tracing=tracing if tracing is not None else _settings.tracing,
        broker=broker if broker is not None else _settings.broker,
        celery_app=celery_app if celery_app is not None else _settings.celery_app,
        dispatch_grace=dispatch_grace if dispatch_grace is not None else _settings.dispatch_grace,
        gc_freeze=gc_freeze if gc_freeze is not None else _settings.gc_freeze,
        drain_seconds=drain_seconds if drain_seconds is not None else _settings.drain_seconds,
    )
    _storage = None
    _runtime = None


def _set_tracing(on: bool, source: str) -> None:
    if not on:
        engine_tracing.install(None)
        return
    try:
        from pyworkflow import tracing
    except ImportError as exc:
        raise ConfigurationError(
            f"{source} needs OpenTelemetry, which is not installed; pip install 'pyworkflow[otel]'"
        ) from exc
    if not tracing.is_instrumented():  # keep a provider given to instrument() by hand
        tracing.instrument()


def _retention() -> float | None:
    """Seconds to keep ended runs, from configure() or PYWORKFLOW_RETENTION; None: forever."""
    if _settings.retention is not None:
        return _settings.retention
    text = os.environ.get("PYWORKFLOW_RETENTION", "").strip()
    try:
        return parse_duration(text) if text else None
    except InvalidDurationError as exc:
        raise ConfigurationError(f"PYWORKFLOW_RETENTION: {exc}") from exc


def configured_modules() -> list[str]:
    """Modules from configure() and PYWORKFLOW_MODULES."""
    env = [m.strip() for m in os.environ.get("PYWORKFLOW_MODULES", "").split(",") if m.strip()]
    return [*_settings.modules, *(m for m in env if m not in _settings.modules)]


def build_storage() -> Storage:
    """A new storage object for the configured URL (or the configured object itself)."""
    chosen = _settings.storage or os.environ.get("PYWORKFLOW_STORAGE") or DEFAULT_STORAGE
    return chosen if not isinstance(chosen, str) else storage_from_url(chosen)


def build_codec() -> Codec:
    """The codec for the configured secret key and pickle setting."""
    key = _settings.secret_key or os.environ.get("PYWORKFLOW_SECRET_KEY") or None
    allow = _settings.allow_pickle
    if allow is None:
        allow = _env_flag("PYWORKFLOW_ALLOW_PICKLE", default=True)
    return Codec(secret_key=key, allow_pickle=allow)


async def get_runtime() -> Runtime:
    """The runtime for the running event loop, built and opened on first use."""
    global _building
    loop = asyncio.get_running_loop()
    if _runtime is not None and _runtime.loop is loop:
        return _runtime
    refuse_client_call()  # workflow code runs on a loop of its own: never a runtime's loop
    if _building is None or _building[0] is not loop:
        _building = (loop, asyncio.Lock())
    async with _building[1]:
        # Callers that waited here find the runtime the first one built: one executor per
        # loop, not one per concurrent caller (each would claim and drive runs of its own).
        if _runtime is not None and _runtime.loop is loop:
            return _runtime
        return await _build_runtime(loop)


async def _build_runtime(loop: asyncio.AbstractEventLoop) -> Runtime:
    global _storage, _runtime
    executor_name = _settings.executor or os.environ.get("PYWORKFLOW_EXECUTOR") or "local"
    if executor_name not in _EXECUTORS:
        raise ConfigurationError(
            f"unknown executor {executor_name!r} (PYWORKFLOW_EXECUTOR); "
            f"this version has: {', '.join(_EXECUTORS)}"
        )
    freeze = _settings.gc_freeze
    if freeze is None:  # read before anything is built: a bad value leaves nothing behind
        freeze = _env_flag("PYWORKFLOW_GC_FREEZE", default=True)
    if _settings.tracing is None and _env_flag("PYWORKFLOW_TRACING", default=False):
        _set_tracing(True, source="PYWORKFLOW_TRACING=1")
    retention = _retention()
    if _storage is None:
        _storage = build_storage()
    await _storage.open()
    registry.import_modules(configured_modules())
    codec = build_codec()
    executor: Executor
    if executor_name == "celery":
        executor = _celery_executor(_storage, codec)
    else:
        executor = LocalExecutor(
            _storage,
            codec,
            settings=engine_settings(),
            retention=retention,
            drain_seconds=10.0 if _settings.drain_seconds is None else _settings.drain_seconds,
        )
    _runtime = Runtime(storage=_storage, codec=codec, executor=executor, loop=loop)
    if freeze:
        freeze_startup_heap()  # after the modules and the storage: they live as long
    return _runtime


def _celery_executor(storage: Storage, codec: Codec) -> Executor:
    try:
        from pyworkflow.executors.celery import CeleryExecutor, create_app
    except ImportError as exc:
        raise ConfigurationError(
            f"executor 'celery' needs Celery, which is not installed ({exc}); "
            "pip install 'pyworkflow[celery]'"
        ) from exc
    app = _settings.celery_app
    if app is None:
        # One app per broker URL, made once: a later configure(broker=...) gets its own.
        broker = _settings.broker
        app = _made_apps.get(broker)
        if app is None:
            app = _made_apps[broker] = create_app(broker)
    settings = engine_settings()
    if "horizon_seconds" not in _settings.engine_given:
        # A Celery worker is shared by every run: it waits in-process for short timers only
        # (a retry delay of 1 s); longer ones go back to storage and the sweeper.
        settings = dataclasses.replace(
            settings, horizon_seconds=min(settings.horizon_seconds, CELERY_HORIZON_SECONDS)
        )
    return CeleryExecutor(storage, codec, app, settings=settings, dispatch_grace=dispatch_grace())


_ENGINE_ENV = {
    "lease_seconds": ("PYWORKFLOW_LEASE_SECONDS", float),
    "max_recoveries": ("PYWORKFLOW_MAX_RECOVERIES", int),
}


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _env_flag(variable: str, *, default: bool) -> bool:
    """The yes/no in the environment variable (``1``/``0``, ``true``/``false``, ...).

    Raises:
        ConfigurationError: it holds anything else (the message names the variable).
    """
    text = os.environ.get(variable, "").strip().lower()
    if not text:
        return default
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ConfigurationError(f"{variable}: expected 1 or 0 (true/false, yes/no), not {text!r}")


def _env_positive(variable: str, kind: type[float] | type[int]) -> float | None:
    """The positive number in the environment variable, None when it is unset.

    Raises:
        ConfigurationError: it holds anything but a positive number (the message names it).
    """
    text = os.environ.get(variable, "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError as exc:
        raise ConfigurationError(f"{variable}: not a positive number: {text!r}") from exc
    if not value > 0:
        raise ConfigurationError(f"{variable}: not a positive number: {text!r}")
    return value


def engine_settings() -> EngineSettings:
    """The lease, horizon and recovery settings: ``configure``'s, else the environment's."""
    from_env: dict[str, Any] = {}
    for knob, (variable, kind) in _ENGINE_ENV.items():
        if knob not in _settings.engine_given:
            value = _env_positive(variable, kind)
            if value is not None:
                from_env[knob] = value
    return dataclasses.replace(_settings.engine, **from_env)


def dispatch_grace() -> float:
    """Seconds a Celery task may wait in its queue before it is sent again."""
    if _settings.dispatch_grace is not None:
        return _settings.dispatch_grace
    value = _env_positive("PYWORKFLOW_DISPATCH_GRACE", float)
    return 60.0 if value is None else value


def sweep_interval() -> float:
    """Seconds between a Celery worker's looks at storage (``PYWORKFLOW_SWEEP_INTERVAL``, 1).

    ``0`` turns that worker's sweeper off.
    """
    text = os.environ.get("PYWORKFLOW_SWEEP_INTERVAL", "").strip()
    if text in ("0", "0.0"):
        return 0.0
    value = _env_positive("PYWORKFLOW_SWEEP_INTERVAL", float)
    return 1.0 if value is None else value


def uses_celery_app(app: Any) -> bool:
    """True if the Celery executor is configured with ``app``."""
    return _settings.executor == "celery" and _settings.celery_app is app


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
    if runtime is not None:
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
    global _settings, _storage, _runtime
    saved = _settings, _storage, _runtime
    _storage, _runtime = runtime.storage, runtime
    try:
        yield runtime
    finally:
        _settings, _storage, _runtime = saved
