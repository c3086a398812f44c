"""Each setting as it applies: ``configure()``'s, else the file's, the environment's, the default.

``pyworkflow.config`` holds what ``configure()`` was given (None where it said nothing); the
functions here answer for one setting each, falling back, first match wins, to the
``pyworkflow.config.yaml`` file (``config_file``), then to the ``PYWORKFLOW_*`` environment
(``env_names``, ``_env_settings``), then to the default, and build the storage and the codec
from the answers. ``pyworkflow.config`` re-exports them: import them from there.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING, Any

from pyworkflow import _env_settings as env
from pyworkflow import config_file, env_names
from pyworkflow._engine.engine import EngineSettings
from pyworkflow._payload_size import limit_from_environment
from pyworkflow.exceptions import ConfigurationError
from pyworkflow.queues import DEFAULT_QUEUE, check_queues
from pyworkflow.serialization import Codec
from pyworkflow.storage import Storage, storage_from_url

if TYPE_CHECKING:
    from pyworkflow.config import _Settings

__all__ = [
    "CELERY_HORIZON_SECONDS",
    "DEFAULT_DRAIN_SECONDS",
    "DEFAULT_STORAGE",
    "EXECUTORS",
    "broker",
    "build_codec",
    "build_storage",
    "celery_app",
    "celery_engine_settings",
    "client_only",
    "configured_modules",
    "default_durable",
    "dispatch_grace",
    "drain_seconds",
    "engine_settings",
    "executor_name",
    "gc_freeze",
    "retention",
    "served_queues",
    "start_waits",
    "storage_url",
    "uses_celery_app",
]

DEFAULT_STORAGE = "sqlite:///pyworkflow.db"
CELERY_HORIZON_SECONDS = 1.0
"""The Celery executor's ``horizon_seconds`` unless configured."""
EXECUTORS = ("local", "celery")
"""The executors ``configure(executor=...)`` and ``PYWORKFLOW_EXECUTOR`` may name."""
DEFAULT_DRAIN_SECONDS = 10.0


def _given() -> _Settings:
    """What ``configure()`` was given: ``pyworkflow.config``'s record, read at each call.

    Read when asked, not imported: ``configure()``, ``reset()`` and ``restore()`` (and tests)
    replace the record there. ``pyworkflow.config`` imports this module, so it is loaded; an
    import statement here would cost a call more than the lookup (these run at every start).
    """
    settings: _Settings = sys.modules["pyworkflow.config"]._settings
    return settings


def default_durable() -> bool:
    """Whether a workflow that does not say ``durable=`` runs durably (default True)."""
    chosen = _given().default_durable
    if chosen is None:
        chosen = config_file.load().flags.get("default_durable")
    return True if chosen is None else chosen


def start_waits() -> bool:
    """Whether ``start()`` returns only once the run has settled (``configure(start_waits=)``).

    ``configure``'s, else ``PYWORKFLOW_START_WAITS``, else False.
    """
    chosen = _given().start_waits
    if chosen is None:
        chosen = config_file.load().flags.get("start_waits")
    return env.flag("PYWORKFLOW_START_WAITS", default=False) if chosen is None else chosen


def client_only() -> bool:
    """Whether this process only starts and queries runs, executing none.

    ``configure(client_only=)``, else ``PYWORKFLOW_CLIENT_ONLY``, else False.
    """
    chosen = _given().client_only
    if chosen is None:
        chosen = config_file.load().flags.get("client_only")
    return env.flag("PYWORKFLOW_CLIENT_ONLY", default=False) if chosen is None else chosen


def executor_name() -> str:
    """The configured executor: ``configure``'s, else ``PYWORKFLOW_EXECUTOR``'s, else local.

    Raises:
        ConfigurationError: ``PYWORKFLOW_EXECUTOR`` names no executor of this version.
    """
    name = _given().executor or config_file.load().executor or env_names.executor() or "local"
    if name not in EXECUTORS:
        raise ConfigurationError(
            f"unknown executor {name!r} (PYWORKFLOW_EXECUTOR); "
            f"this version has: {', '.join(EXECUTORS)}"
        )
    return name


def served_queues() -> tuple[str, ...]:
    """The queues whose runs the local executor executes in this process.

    ``configure(queues=)``, else ``PYWORKFLOW_QUEUES`` (comma separated), else the default
    queue alone.

    Raises:
        ConfigurationError: ``PYWORKFLOW_QUEUES`` holds no queue or a bad name.
    """
    chosen = _given().queues
    if chosen is not None:
        return chosen
    in_file = config_file.load().queues
    if in_file is not None:
        return check_queues(list(in_file), source=f"{config_file.FILE_NAME}: queues")
    in_env = env.queues()
    return (DEFAULT_QUEUE,) if in_env is None else in_env


def configured_modules() -> list[str]:
    """Modules from configure(), the file and PYWORKFLOW_MODULES (``env_names``)."""
    found = [*_given().modules]
    for module in [*config_file.load().modules, *env_names.modules()]:
        if module not in found:
            found.append(module)
    return found


def storage_url(given: str | None = None) -> str:
    """The storage URL: ``given`` (``--storage``), else the file's, the environment's, the default.

    ``configure(storage=...)`` is ``build_storage``'s to read (it may be an object).
    """
    return given or config_file.load().storage or env_names.storage() or DEFAULT_STORAGE


def build_storage() -> Storage:
    """A new storage object for the configured URL (or the configured object itself)."""
    chosen = _given().storage or storage_url()
    return chosen if not isinstance(chosen, str) else storage_from_url(chosen)


def build_codec() -> Codec:
    """The codec for the configured secret key and pickle setting."""
    given = _given()
    key = given.secret_key or config_file.load().secret_key or env.secret_key()
    allow = given.allow_pickle
    if allow is None:
        allow = env.flag("PYWORKFLOW_ALLOW_PICKLE", default=True)
    return Codec(secret_key=key, allow_pickle=allow, max_payload_size=limit_from_environment())


def engine_settings() -> EngineSettings:
    """The lease, horizon and recovery settings: ``configure``'s, else the environment's."""
    given = _given()
    from_env: dict[str, Any] = {}
    in_file = config_file.load().numbers
    for knob, (variable, kind) in env.ENGINE_VARIABLES.items():
        if knob not in given.engine_given:
            value = in_file.get(knob) or env.positive(variable, kind)
            if value is not None:
                from_env[knob] = value
    return dataclasses.replace(given.engine, **from_env)


def celery_engine_settings() -> EngineSettings:
    """``engine_settings()`` for the Celery executor: a short horizon unless configured.

    A Celery worker is shared by every run: it waits in-process for short timers only (a
    retry delay of 1 s); longer ones go back to storage and the sweeper.
    """
    settings = engine_settings()
    if "horizon_seconds" in _given().engine_given:
        return settings
    horizon = min(settings.horizon_seconds, CELERY_HORIZON_SECONDS)
    return dataclasses.replace(settings, horizon_seconds=horizon)


def celery_app() -> Any:
    """The Celery app given to ``configure(celery_app=)``, or None."""
    return _given().celery_app


def uses_celery_app(app: Any) -> bool:
    """True if the Celery executor is configured with ``app``."""
    given = _given()
    return given.executor == "celery" and given.celery_app is app


def broker() -> str | None:
    """The broker given to ``configure(broker=)``, or None (``PYWORKFLOW_BROKER`` then)."""
    return _given().broker or config_file.load().broker


def dispatch_grace() -> float:
    """Seconds a Celery task may wait in its queue before it is sent again."""
    chosen = _given().dispatch_grace
    return env.dispatch_grace() if chosen is None else chosen


def drain_seconds() -> float:
    """How long a stopping executor lets running steps finish (``configure(drain_seconds=)``)."""
    chosen = _given().drain_seconds
    return DEFAULT_DRAIN_SECONDS if chosen is None else chosen


def gc_freeze() -> bool:
    """Whether to freeze the start-up heap (``configure(gc_freeze=)``, ``PYWORKFLOW_GC_FREEZE``)."""
    chosen = _given().gc_freeze
    return env.flag("PYWORKFLOW_GC_FREEZE", default=True) if chosen is None else chosen


def retention() -> float | None:
    """Seconds to keep ended runs, from configure() or PYWORKFLOW_RETENTION; None: forever."""
    chosen = _given().retention
    return env.retention() if chosen is None else chosen
