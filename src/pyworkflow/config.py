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

``PYWORKFLOW_CLIENT_ONLY`` (``1``/``0``, ``configure(client_only=)``) makes this process a
client: it starts and queries runs and executes none. ``PYWORKFLOW_QUEUES`` (comma separated,
``configure(queues=)``) names the queues whose runs the local executor executes here (default
``pyworkflow``, ``pyworkflow.queues.DEFAULT_QUEUE``).

This module holds settings only; the process's runtime built from them (opened storage,
codec, executor) is ``pyworkflow.runtime``'s. ``configure()`` makes the next call build anew.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pyworkflow import config_file, env_names
from pyworkflow._engine import tracing as engine_tracing
from pyworkflow._engine.engine import EngineSettings
from pyworkflow._payload_size import limit_from_environment
from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import ConfigurationError, InvalidDurationError
from pyworkflow.queues import DEFAULT_QUEUE, check_queues
from pyworkflow.serialization import Codec
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

DEFAULT_STORAGE = "sqlite:///pyworkflow.db"
CELERY_HORIZON_SECONDS = 1.0
"""The Celery executor's ``horizon_seconds`` unless configured."""
EXECUTORS = ("local", "celery")
"""The executors ``configure(executor=...)`` and ``PYWORKFLOW_EXECUTOR`` may name."""
DEFAULT_DRAIN_SECONDS = 10.0


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


def default_durable() -> bool:
    """Whether a workflow that does not say ``durable=`` runs durably (default True)."""
    chosen = _settings.default_durable
    if chosen is None:
        chosen = config_file.load().flags.get("default_durable")
    return True if chosen is None else chosen


def start_waits() -> bool:
    """Whether ``start()`` returns only once the run has settled (``configure(start_waits=)``).

    ``configure``'s, else ``PYWORKFLOW_START_WAITS``, else False.
    """
    chosen = _settings.start_waits
    if chosen is None:
        chosen = config_file.load().flags.get("start_waits")
    return _env_flag("PYWORKFLOW_START_WAITS", default=False) if chosen is None else chosen


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


def executor_name() -> str:
    """The configured executor: ``configure``'s, else ``PYWORKFLOW_EXECUTOR``'s, else local.

    Raises:
        ConfigurationError: ``PYWORKFLOW_EXECUTOR`` names no executor of this version.
    """
    name = _settings.executor or config_file.load().executor or env_names.executor() or "local"
    if name not in EXECUTORS:
        raise ConfigurationError(
            f"unknown executor {name!r} (PYWORKFLOW_EXECUTOR); "
            f"this version has: {', '.join(EXECUTORS)}"
        )
    return name


def gc_freeze() -> bool:
    """Whether to freeze the start-up heap (``configure(gc_freeze=)``, ``PYWORKFLOW_GC_FREEZE``)."""
    chosen = _settings.gc_freeze
    return _env_flag("PYWORKFLOW_GC_FREEZE", default=True) if chosen is None else chosen


def start_tracing_from_env() -> None:
    """Turn spans on if ``PYWORKFLOW_TRACING=1`` and ``configure(tracing=)`` said nothing."""
    if _settings.tracing is None and _env_flag("PYWORKFLOW_TRACING", default=False):
        _set_tracing(True, source="PYWORKFLOW_TRACING=1")


def drain_seconds() -> float:
    """How long a stopping executor lets running steps finish (``configure(drain_seconds=)``)."""
    chosen = _settings.drain_seconds
    return DEFAULT_DRAIN_SECONDS if chosen is None else chosen


def client_only() -> bool:
    """Whether this process only starts and queries runs, executing none.

    ``configure(client_only=)``, else ``PYWORKFLOW_CLIENT_ONLY``, else False.
    """
    chosen = _settings.client_only
    if chosen is None:
        chosen = config_file.load().flags.get("client_only")
    return _env_flag("PYWORKFLOW_CLIENT_ONLY", default=False) if chosen is None else chosen


def served_queues() -> tuple[str, ...]:
    """The queues whose runs the local executor executes in this process.

    ``configure(queues=)``, else ``PYWORKFLOW_QUEUES`` (comma separated), else the default
    queue alone.

    Raises:
        ConfigurationError: ``PYWORKFLOW_QUEUES`` holds no queue or a bad name.
    """
    if _settings.queues is not None:
        return _settings.queues
    in_file = config_file.load().queues
    if in_file is not None:
        return check_queues(list(in_file), source=f"{config_file.FILE_NAME}: queues")
    text = os.environ.get("PYWORKFLOW_QUEUES", "")
    if not text.strip():
        return (DEFAULT_QUEUE,)
    return check_queues(text, source="PYWORKFLOW_QUEUES")


def celery_app() -> Any:
    """The Celery app given to ``configure(celery_app=)``, or None."""
    return _settings.celery_app


def broker() -> str | None:
    """The broker given to ``configure(broker=)``, or None (``PYWORKFLOW_BROKER`` then)."""
    return _settings.broker or config_file.load().broker


def celery_engine_settings() -> EngineSettings:
    """``engine_settings()`` for the Celery executor: a short horizon unless configured.

    A Celery worker is shared by every run: it waits in-process for short timers only (a
    retry delay of 1 s); longer ones go back to storage and the sweeper.
    """
    settings = engine_settings()
    if "horizon_seconds" in _settings.engine_given:
        return settings
    horizon = min(settings.horizon_seconds, CELERY_HORIZON_SECONDS)
    return dataclasses.replace(settings, horizon_seconds=horizon)


def retention() -> float | None:
    """Seconds to keep ended runs, from configure() or PYWORKFLOW_RETENTION; None: forever."""
    if _settings.retention is not None:
        return _settings.retention
    text = os.environ.get("PYWORKFLOW_RETENTION", "").strip()
    try:
        return parse_duration(text) if text else None
    except InvalidDurationError as exc:
        raise ConfigurationError(f"PYWORKFLOW_RETENTION: {exc}") from exc


def configured_modules() -> list[str]:
    """Modules from configure(), the file and PYWORKFLOW_MODULES (``env_names``)."""
    env = env_names.modules()
    found = [*_settings.modules]
    for module in [*config_file.load().modules, *env]:
        if module not in found:
            found.append(module)
    return found


def build_storage() -> Storage:
    """A new storage object for the configured URL (or the configured object itself)."""
    chosen = _settings.storage or storage_url()
    return chosen if not isinstance(chosen, str) else storage_from_url(chosen)


def storage_url(given: str | None = None) -> str:
    """The storage URL: ``given`` (``--storage``), else the file's, the environment's, the default.

    ``configure(storage=...)`` is ``build_storage``'s to read (it may be an object).
    """
    return given or config_file.load().storage or env_names.storage() or DEFAULT_STORAGE


def build_codec() -> Codec:
    """The codec for the configured secret key and pickle setting."""
    key = (
        _settings.secret_key
        or config_file.load().secret_key
        or os.environ.get("PYWORKFLOW_SECRET_KEY")
        or None
    )
    allow = _settings.allow_pickle
    if allow is None:
        allow = _env_flag("PYWORKFLOW_ALLOW_PICKLE", default=True)
    return Codec(secret_key=key, allow_pickle=allow, max_payload_size=limit_from_environment())


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
    in_file = config_file.load().numbers
    for knob, (variable, kind) in _ENGINE_ENV.items():
        if knob not in _settings.engine_given:
            value = in_file.get(knob) or _env_positive(variable, kind)
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


def snapshot() -> tuple[Any, int]:
    """The settings as they are now, for ``restore`` (the test toolkit's ``use_runtime``)."""
    return _settings, _generation


def restore(saved: tuple[Any, int]) -> None:
    """Put back settings taken by ``snapshot``."""
    global _settings, _generation
    _settings, _generation = saved


def uses_celery_app(app: Any) -> bool:
    """True if the Celery executor is configured with ``app``."""
    return _settings.executor == "celery" and _settings.celery_app is app
