"""Settings from ``PYWORKFLOW_*`` environment variables: each one read, parsed and checked.

The environment is the last place a setting comes from before its default: ``configure()``
and the ``pyworkflow.config.yaml`` file come first (``pyworkflow.config`` reads them in that
order). The variables:

- ``PYWORKFLOW_STORAGE`` (default ``sqlite:///pyworkflow.db``), ``PYWORKFLOW_EXECUTOR``
  (``local`` or ``celery``), ``PYWORKFLOW_BROKER`` (the Celery broker) and
  ``PYWORKFLOW_MODULES`` (comma separated): these also have the pyworkflow documentation's
  spellings, so ``env_names`` reads them;
- ``PYWORKFLOW_SECRET_KEY``, ``PYWORKFLOW_ALLOW_PICKLE`` (``1``/``0``), ``PYWORKFLOW_TRACING``
  (``1``/``0``), ``PYWORKFLOW_GC_FREEZE`` (``1``/``0``, see ``pyworkflow._heap``);
- ``PYWORKFLOW_LEASE_SECONDS`` and ``PYWORKFLOW_MAX_RECOVERIES``, for workers started by a
  command line that has no such option, such as ``celery worker``;
- ``PYWORKFLOW_DISPATCH_GRACE`` (seconds a Celery task may wait in its queue) and
  ``PYWORKFLOW_SWEEP_INTERVAL`` (seconds between a Celery worker's looks at storage);
- ``PYWORKFLOW_RETENTION`` (a duration such as ``30d``): the local executor deletes runs that
  ended longer ago than that, in the background;
- ``PYWORKFLOW_CLIENT_ONLY`` (``1``/``0``): this process starts and queries runs and executes
  none; ``PYWORKFLOW_QUEUES`` (comma separated): the queues whose runs the local executor
  executes here; ``PYWORKFLOW_START_WAITS`` (``1``/``0``): ``start()`` returns once the run
  has settled.

A variable that is set but cannot be read (``PYWORKFLOW_LEASE_SECONDS=soon``) is a
``ConfigurationError`` naming it, raised when the setting is first needed.
"""

from __future__ import annotations

import os

from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import ConfigurationError, InvalidDurationError
from pyworkflow.queues import check_queues

__all__ = [
    "ENGINE_VARIABLES",
    "dispatch_grace",
    "flag",
    "positive",
    "queues",
    "retention",
    "secret_key",
    "sweep_interval",
]

ENGINE_VARIABLES = {
    "lease_seconds": ("PYWORKFLOW_LEASE_SECONDS", float),
    "max_recoveries": ("PYWORKFLOW_MAX_RECOVERIES", int),
}
"""The engine knobs the environment may set: knob, its variable, the number type it holds."""


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def flag(variable: str, *, default: bool) -> bool:
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


def positive(variable: str, kind: type[float] | type[int]) -> float | None:
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


def retention() -> float | None:
    """Seconds to keep ended runs, from ``PYWORKFLOW_RETENTION``; None: forever.

    Raises:
        ConfigurationError: it holds no duration (the message names the variable).
    """
    text = os.environ.get("PYWORKFLOW_RETENTION", "").strip()
    try:
        return parse_duration(text) if text else None
    except InvalidDurationError as exc:
        raise ConfigurationError(f"PYWORKFLOW_RETENTION: {exc}") from exc


def queues() -> tuple[str, ...] | None:
    """The queues ``PYWORKFLOW_QUEUES`` names (comma separated), None when it is unset.

    Raises:
        ConfigurationError: it holds no queue or a bad name.
    """
    text = os.environ.get("PYWORKFLOW_QUEUES", "")
    if not text.strip():
        return None
    return check_queues(text, source="PYWORKFLOW_QUEUES")


def secret_key() -> str | None:
    """``PYWORKFLOW_SECRET_KEY``, None when it is unset or empty."""
    return os.environ.get("PYWORKFLOW_SECRET_KEY") or None


def dispatch_grace() -> float:
    """Seconds a Celery task may wait in its queue before it is sent again.

    ``PYWORKFLOW_DISPATCH_GRACE``, else 60.
    """
    value = positive("PYWORKFLOW_DISPATCH_GRACE", float)
    return 60.0 if value is None else value


def sweep_interval() -> float:
    """Seconds between a Celery worker's looks at storage (``PYWORKFLOW_SWEEP_INTERVAL``, 1).

    ``0`` turns that worker's sweeper off.
    """
    text = os.environ.get("PYWORKFLOW_SWEEP_INTERVAL", "").strip()
    if text in ("0", "0.0"):
        return 0.0
    value = positive("PYWORKFLOW_SWEEP_INTERVAL", float)
    return 1.0 if value is None else value
