"""Environment variables under our names and under the pyworkflow documentation's.

Ours come first; theirs are read where ours are not set, so a deployment written for that
documentation keeps working:

- modules: ``PYWORKFLOW_MODULES``, then ``PYWORKFLOW_MODULE`` and ``PYWORKFLOW_DISCOVER``;
- executor: ``PYWORKFLOW_EXECUTOR``, then ``PYWORKFLOW_RUNTIME``;
- storage: ``PYWORKFLOW_STORAGE`` (a URL), then ``PYWORKFLOW_STORAGE_BACKEND`` (``file``,
  ``sqlite``, ``memory``, as in ``pyworkflow.config.yaml``) with ``PYWORKFLOW_STORAGE_PATH``
  (default ``./workflow_data``, their file backend's directory);
- Celery broker: ``PYWORKFLOW_BROKER``, then ``PYWORKFLOW_CELERY_BROKER``, then Celery's own
  ``CELERY_BROKER_URL``. (``PYWORKFLOW_CELERY_RESULT_BACKEND`` is not read: results live in
  storage.)
"""

from __future__ import annotations

import os

from pyworkflow import config_file

__all__ = ["broker", "executor", "modules", "storage"]

_DEFAULT_PATHS = {"file": "./workflow_data", "sqlite": "./pyworkflow.db"}


def _first(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def modules() -> list[str]:
    """The modules the environment names (comma separated), ours first."""
    found: list[str] = []
    for name in ("PYWORKFLOW_MODULES", "PYWORKFLOW_MODULE", "PYWORKFLOW_DISCOVER"):
        for module in os.environ.get(name, "").split(","):
            if module.strip() and module.strip() not in found:
                found.append(module.strip())
    return found


def executor() -> str | None:
    """The executor the environment names, if any (checked by the caller)."""
    return _first("PYWORKFLOW_EXECUTOR", "PYWORKFLOW_RUNTIME")


def storage() -> str | None:
    """The storage URL the environment gives, if any.

    Raises:
        ConfigurationError: ``PYWORKFLOW_STORAGE_BACKEND`` names no backend.
    """
    url = _first("PYWORKFLOW_STORAGE")
    backend = _first("PYWORKFLOW_STORAGE_BACKEND")
    if url is not None or backend is None:
        return url
    path = _first("PYWORKFLOW_STORAGE_PATH") or _DEFAULT_PATHS.get(backend)
    return config_file.storage_of(backend, path, "PYWORKFLOW_STORAGE_BACKEND")


def broker() -> str | None:
    """The Celery broker URL the environment gives, if any."""
    return _first("PYWORKFLOW_BROKER", "PYWORKFLOW_CELERY_BROKER", "CELERY_BROKER_URL")
