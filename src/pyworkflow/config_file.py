"""``pyworkflow.config.yaml``: settings read from the working directory, library and CLI alike.

Where a setting comes from, first match wins: the call's own arguments (``--storage`` on the
command line, ``storage=`` on a call), then ``configure()``, then this file, then the
``PYWORKFLOW_*`` environment variables, then the defaults. (The environment comes after the
file so that a file checked into a project says what the project runs on; unset a key in the
file to let the environment decide.)

The file, in the working directory of the process (not of the script)::

    module: myapp.workflows        # or modules: [a, b]; imported by workers and the CLI
    runtime: local                 # or celery (also spelled executor:)
    storage:                       # or a URL: storage: sqlite:///app.db
      backend: sqlite              # memory | file | sqlite | postgres (also type:)
      path: ./app.db               # (also base_path:) sqlite: the database file; file: a
                                   #   directory (SQLite in <path>/pyworkflow.db);
                                   #   postgres: url: postgresql://...
    celery:
      broker: redis://localhost:6379/0
      result_backend: ...          # accepted, unused: results live in storage
    default_durable: true          # false: workflows without durable= run transient
    start_waits: false             # true: start() returns once the run has settled
    client_only: false
    queues: [pyworkflow]
    secret_key: ...
    lease_seconds: 15
    max_recoveries: 5
    recovery:                      # their spelling of max_recoveries:
      max_recovery_attempts: 5     #   take-overs without progress before a run fails
      recover_on_worker_loss: true # true only; false is per workflow (@workflow(...))

Every key is checked when the file is read: an unknown key, a value of the wrong type, an
unknown backend is a ``ConfigurationError`` naming the file and the key (``storage.backend``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pyworkflow.exceptions import ConfigurationError

__all__ = ["FILE_NAME", "FileSettings", "forget", "load", "storage_of"]

FILE_NAME = "pyworkflow.config.yaml"
_BACKENDS = ("memory", "file", "sqlite", "postgres", "postgresql")
_FLAGS = ("default_durable", "durable", "start_waits", "client_only")
_NUMBERS = {"lease_seconds": float, "max_recoveries": int}
_TOP = {
    "module", "modules", "runtime", "executor", "storage", "celery", "secret_key", "queues",
    "recovery", *_FLAGS, *_NUMBERS,
}  # fmt: skip


@dataclass(frozen=True)
class FileSettings:
    """What the file set (None: not set), in ``configure()``'s terms."""

    path: Path | None = None
    storage: str | None = None
    executor: str | None = None
    modules: tuple[str, ...] = ()
    broker: str | None = None
    secret_key: str | None = None
    queues: tuple[str, ...] | None = None
    flags: dict[str, bool] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)


_cache: tuple[tuple[str, float], FileSettings] | None = None
_NONE = FileSettings()
_RECHECK = 1.0  # seconds between two looks at the file: start() asks on every call
_looked: tuple[str, float, FileSettings] | None = None  # (directory, when, what was found)


def forget() -> None:
    """Read the file again at the next ``load()`` (``reset_config()`` calls this)."""
    global _cache, _looked
    _cache = _looked = None


def load(directory: str | os.PathLike[str] | None = None) -> FileSettings:
    """The settings of ``pyworkflow.config.yaml`` in ``directory`` (default: the working one).

    Read again when the file changes (looked at no more than once a second: ``start()`` asks
    on every call); no file is no settings.

    Raises:
        ConfigurationError: the file is not valid YAML, or a key or value is wrong (named).
    """
    global _looked
    where = os.fspath(directory or os.getcwd())
    now = time.monotonic()
    if _looked is not None and _looked[0] == where and now - _looked[1] < _RECHECK:
        return _looked[2]
    found = _read(Path(where) / FILE_NAME)
    _looked = (where, now, found)
    return found


def _read(path: Path) -> FileSettings:
    global _cache
    try:
        stamp = (str(path), path.stat().st_mtime)
    except OSError:
        return _NONE
    if _cache is not None and _cache[0] == stamp:
        return _cache[1]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"{path}: cannot be read as YAML: {exc}") from exc
    settings = _parse(path, {} if data is None else data)
    _cache = (stamp, settings)
    return settings


def _parse(path: Path, data: Any) -> FileSettings:
    def bad(key: str, why: str) -> ConfigurationError:
        return ConfigurationError(f"{path}: {key}: {why}")

    if not isinstance(data, dict):
        raise bad("(top level)", f"expected a mapping of settings, not {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - _TOP)
    if unknown:
        raise bad(unknown[0], f"unknown setting; known: {', '.join(sorted(_TOP))}")

    def text(key: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise bad(key, f"expected a non-empty string, not {value!r}")
        return value.strip()

    def names(key: str, value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list):
            raise bad(key, f"expected a name or a list of names, not {value!r}")
        return tuple(text(key, item) for item in items if not (isinstance(item, str) and not item))

    modules: tuple[str, ...] = ()
    for key in ("module", "modules"):
        if key in data:
            modules = names(key, data[key])
    executor = None
    for key in ("runtime", "executor"):
        if key in data:
            executor = text(key, data[key])
            if executor not in ("local", "celery"):
                raise bad(key, f"{executor!r} is not an executor; use local or celery")
    flags = {}
    for key in _FLAGS:
        if key in data:
            if not isinstance(data[key], bool):
                raise bad(key, f"expected true or false, not {data[key]!r}")
            flags["default_durable" if key == "durable" else key] = data[key]
    numbers = {}
    for key, kind in _NUMBERS.items():
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise bad(key, f"expected a positive number, not {value!r}")
            numbers[key] = kind(value)
    if "recovery" in data:
        numbers.update(_recovery(data["recovery"], bad))
    return FileSettings(
        path=path,
        storage=_storage(data["storage"], bad) if "storage" in data else None,
        executor=executor,
        modules=modules,
        broker=_broker(data["celery"], bad) if "celery" in data else None,
        secret_key=text("secret_key", data["secret_key"]) if "secret_key" in data else None,
        queues=names("queues", data["queues"]) if "queues" in data else None,
        flags=flags,
        numbers=numbers,
    )


def _recovery(value: Any, bad: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise bad("recovery", f"expected a mapping (max_recovery_attempts: ...), not {value!r}")
    unknown = sorted(set(map(str, value)) - {"max_recovery_attempts", "recover_on_worker_loss"})
    if unknown:
        raise bad(
            f"recovery.{unknown[0]}",
            "unknown key; known: max_recovery_attempts, recover_on_worker_loss",
        )
    if value.get("recover_on_worker_loss", True) is not True:
        raise bad(
            "recovery.recover_on_worker_loss",
            "only true here (the default); say @workflow(recover_on_worker_loss=False) on the "
            "workflows that must fail when their worker dies",
        )
    attempts = value.get("max_recovery_attempts")
    if attempts is None:
        return {}
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        raise bad("recovery.max_recovery_attempts", f"expected a whole number, not {attempts!r}")
    return {"max_recoveries": attempts}


def storage_of(backend: str, path: str | None, source: str) -> str:
    """The storage URL of a ``backend`` and ``path`` as the file spells them.

    Raises:
        ConfigurationError: an unknown backend, or a missing path, naming ``source``.
    """

    def bad(key: str, why: str) -> ConfigurationError:
        return ConfigurationError(f"{source}: {why}")

    value = {"backend": backend} if path is None else {"backend": backend, "path": path}
    return _storage(value, bad)


def _storage(value: Any, bad: Any) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if not isinstance(value, dict):
        raise bad("storage", f"expected a URL or a mapping with a backend, not {value!r}")
    # type / base_path: the spellings their `pyworkflow setup` writes, for backend / path.
    unknown = sorted(set(map(str, value)) - {"backend", "type", "path", "base_path", "url", "dsn"})
    if unknown:
        raise bad(f"storage.{unknown[0]}", "unknown key; known: backend (type), path, url")
    if "backend" in value and "type" in value:
        raise bad("storage.type", "give backend or type, not both")
    backend = value.get("backend", value.get("type"))
    if backend not in _BACKENDS:
        key = "storage.type" if "type" in value else "storage.backend"
        raise bad(key, f"{backend!r} is not one of {', '.join(_BACKENDS)}")
    if backend == "memory":
        return "memory://"
    if backend in ("postgres", "postgresql"):
        url = value.get("url") or value.get("dsn")
        if not isinstance(url, str) or not url.startswith(("postgres://", "postgresql")):
            raise bad("storage.url", f"postgres needs a postgresql:// URL, not {url!r}")
        return str(url)
    if "path" in value and "base_path" in value:
        raise bad("storage.base_path", "give path or base_path, not both")
    path = value.get("path", value.get("base_path"))
    if not isinstance(path, str) or not path.strip():
        raise bad("storage.path", f"the {backend} backend needs a path, not {path!r}")
    if backend == "file":  # a directory, as their file backend took; SQLite inside it
        return f"sqlite:///{os.path.join(path, 'pyworkflow.db')}"
    return f"sqlite:///{path}"


def _broker(value: Any, bad: Any) -> str | None:
    if not isinstance(value, dict):
        raise bad("celery", f"expected a mapping (broker: ...), not {value!r}")
    unknown = sorted(set(map(str, value)) - {"broker", "result_backend"})
    if unknown:
        raise bad(f"celery.{unknown[0]}", "unknown key; known: broker, result_backend")
    broker = value.get("broker")
    if broker is not None and (not isinstance(broker, str) or "://" not in broker):
        raise bad("celery.broker", f"expected a broker URL, not {broker!r}")
    return broker
