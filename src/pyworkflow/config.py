"""``configure()``: which storage, executor and secret key this process uses.

This module holds what ``configure()`` was given: its record (None where a call said
nothing), checked and merged call after call, and the count of calls that tells a runtime
built earlier to build anew. Every setting also comes from the ``pyworkflow.config.yaml`` file
(``config_file``) and a ``PYWORKFLOW_*`` environment variable (``_env_settings`` lists them);
an explicit ``configure`` argument wins. The functions that give each setting as it applies
(``served_queues()``, ``build_codec()`` ...) are ``_settings_in_force``'s, imported from here.

Settings only: the process's runtime built from them (opened storage,
codec, executor) is ``pyworkflow.runtime``'s. ``configure()`` makes the next call build anew.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pyworkflow import _env_settings as env
from pyworkflow import config_file
from pyworkflow._engine import tracing as engine_tracing
from pyworkflow._engine.engine import EngineSettings
from pyworkflow._env_settings import sweep_interval
from pyworkflow._settings_in_force import (
    CELERY_HORIZON_SECONDS as CELERY_HORIZON_SECONDS,
)
from pyworkflow._settings_in_force import (
    DEFAULT_DRAIN_SECONDS as DEFAULT_DRAIN_SECONDS,
)
from pyworkflow._settings_in_force import (
    DEFAULT_STORAGE,
    EXECUTORS,
    build_codec,
    build_storage,
    client_only,
    configured_modules,
    dispatch_grace,
    engine_settings,
    served_queues,
)
from pyworkflow._settings_in_force import broker as broker
from pyworkflow._settings_in_force import celery_app as celery_app
from pyworkflow._settings_in_force import celery_engine_settings as celery_engine_settings
from pyworkflow._settings_in_force import default_durable as default_durable
from pyworkflow._settings_in_force import drain_seconds as drain_seconds
from pyworkflow._settings_in_force import executor_name as executor_name
from pyworkflow._settings_in_force import gc_freeze as gc_freeze
from pyworkflow._settings_in_force import retention as retention
from pyworkflow._settings_in_force import start_waits as start_waits
from pyworkflow._settings_in_force import storage_url as storage_url
from pyworkflow._settings_in_force import uses_celery_app as uses_celery_app
from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.queues import check_queues
from pyworkflow.storage import Storage, storage_from_url

__all__ = [
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
]


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
    client_only: bool | None = None
    queues: tuple[str, ...] | None = None
    default_durable: bool | None = None
    start_waits: bool | None = None


_settings = _Settings()
# Bumped by each configure(): a runtime built from older settings is built anew.
_generation = 0


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
    client_only: bool | None = None,
    queues: list[str] | tuple[str, ...] | str | None = None,
    default_durable: bool | None = None,
    start_waits: bool | None = None,
    default_runtime: str | None = None,
    celery_broker: str | None = None,
    default_max_recovery_attempts: int | None = None,
    default_recover_on_worker_loss: bool | None = None,
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
        client_only: True makes this process a client (a web app, a script that only starts
            runs): it starts, queries, cancels and resumes runs and delivers hooks, but never
            executes a run; the runs it starts are stored for a worker, and ``run()`` waits
            for one to finish them. False (the default) executes the runs it starts, and
            other due runs of its queues, in this process: zero set-up for a single node.
            On the Celery executor, whose starters execute no step anyway, True also skips
            the first turn (workflow code up to its first step) that the starter would run.
        queues: with the local executor: the queues whose runs this process executes (a list,
            or one comma-separated string); default ``["pyworkflow"]``, the queue of every
            workflow without ``@workflow(queue=...)``. Runs of other queues that it starts are
            stored for a worker of theirs (``pyworkflow worker run -Q billing``).
        default_durable: False makes runs of workflows that do not say ``durable=`` transient
            (``pyworkflow.transient``: in this process, nothing stored); default True.
        start_waits: True makes ``start()`` (and ``resume()``) return once the run has
            settled: ended, or waiting on a timer, a hook or a retry delay, its children
            settled too (``executors/_settling.py``); False (the default) returns as soon as
            the run is stored and executes it in the background. Also
            ``PYWORKFLOW_START_WAITS``; the storage classes named for the pyworkflow
            documentation (``InMemoryStorageBackend`` ...) turn it on.
        default_runtime: the pyworkflow documentation's name for ``executor``.
        celery_broker: the pyworkflow documentation's name for ``broker``.
        default_max_recovery_attempts: its name for ``max_recoveries``.
        default_recover_on_worker_loss: True only (the default); False is said per
            workflow, ``@workflow(recover_on_worker_loss=False)``.

    Raises:
        ConfigurationError: an unknown executor or storage URL scheme, ``tracing=True``
            without OpenTelemetry installed, or ``queues`` empty or naming a bad queue.
        InvalidDurationError: ``retention`` is not a duration.
    """
    global _settings, _generation
    executor = _same("executor", executor, "default_runtime", default_runtime)
    if default_recover_on_worker_loss not in (None, True):
        raise ConfigurationError(
            f"configure(default_recover_on_worker_loss={default_recover_on_worker_loss!r}): "
            "only True here; say @workflow(recover_on_worker_loss=False) on the workflows "
            "that must fail when their worker dies"
        )
    if default_max_recovery_attempts is not None:
        if max_recoveries not in (None, default_max_recovery_attempts):
            raise ConfigurationError(
                f"configure(max_recoveries={max_recoveries!r}, default_max_recovery_attempts="
                f"{default_max_recovery_attempts!r}) disagree; give one of them"
            )
        max_recoveries = default_max_recovery_attempts
    broker = _same("broker", broker, "celery_broker", celery_broker)
    keep = None if retention is None else parse_duration(retention)
    if executor is not None and executor not in EXECUTORS:
        raise ConfigurationError(
            f"unknown executor {executor!r}; this version has: {', '.join(EXECUTORS)}"
        )
    if isinstance(storage, str):
        storage_from_url(storage)  # validate the scheme now, not at first use
    served = None if queues is None else check_queues(queues, source="configure(queues=...)")
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
        client_only=client_only if client_only is not None else _settings.client_only,
        queues=served if served is not None else _settings.queues,
        default_durable=_flag(default_durable, "default_durable", _settings.default_durable),
        start_waits=_flag(
            start_waits if start_waits is not None else getattr(storage, "start_waits", None),
            "start_waits",
            _settings.start_waits,
        ),
    )
    _generation += 1


def _same(name: str, value: str | None, alias: str, aliased: str | None) -> str | None:
    """One setting given under our name or the documentation's; both must agree."""
    if aliased is not None and value is not None and aliased != value:
        raise ConfigurationError(
            f"configure({name}={value!r}, {alias}={aliased!r}) disagree; give one of them"
        )
    return value if value is not None else aliased


def _flag(value: Any, name: str, current: bool | None) -> bool | None:
    if value is None:
        return current
    if not isinstance(value, bool):
        raise ConfigurationError(f"configure({name}=...) takes True or False, not {value!r}")
    return value


def get_config() -> Any:
    """``from pyworkflow.config import get_config``: ``pyworkflow.get_config`` (seed_compat)."""
    from pyworkflow.seed_compat import get_config as settings  # it imports this module

    return settings()


def reset() -> None:
    """Forget every ``configure()`` setting: back to the file, the environment, the defaults."""
    global _settings, _generation
    _settings = _Settings()
    config_file.forget()
    _generation += 1


def current() -> dict[str, Any]:
    """The settings ``configure()`` was given (None where it was not), by name."""
    values = {f.name: getattr(_settings, f.name) for f in dataclasses.fields(_settings)}
    values.pop("engine_given")
    engine = values.pop("engine")
    values.update(dataclasses.asdict(engine))
    return values


def _set_tracing(on: bool, source: str) -> None:
    if not on:
        engine_tracing.install(None)
        return
    try:
        from pyworkflow import tracing
    except ImportError as exc:
        raise ConfigurationError(
            f"{source} needs OpenTelemetry, which is not installed; "
            "pip install 'pyworkflow-durable[otel]'"
        ) from exc
    if not tracing.is_instrumented():  # keep a provider given to instrument() by hand
        tracing.instrument()


def generation() -> int:
    """How many times ``configure()`` was called: a runtime remembers the one it was built at."""
    return _generation


def start_tracing_from_env() -> None:
    """Turn spans on if ``PYWORKFLOW_TRACING=1`` and ``configure(tracing=)`` said nothing."""
    if _settings.tracing is None and env.flag("PYWORKFLOW_TRACING", default=False):
        _set_tracing(True, source="PYWORKFLOW_TRACING=1")


def snapshot() -> tuple[Any, int]:
    """The settings as they are now, for ``restore`` (the test toolkit's ``use_runtime``)."""
    return _settings, _generation


def restore(saved: tuple[Any, int]) -> None:
    """Put back settings taken by ``snapshot``."""
    global _settings, _generation
    _settings, _generation = saved
