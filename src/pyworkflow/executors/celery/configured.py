"""This process's Celery executor, as ``configure()`` and the environment describe it."""

from __future__ import annotations

from typing import Any

from pyworkflow import config
from pyworkflow.executors.celery.broker import sending_app
from pyworkflow.executors.celery.executor import CeleryExecutor
from pyworkflow.serialization import Codec
from pyworkflow.storage import Storage

__all__ = ["configured_executor"]

# One app per broker URL, made once: a later configure(broker=...) gets its own.
_made_apps: dict[str | None, Any] = {}


def configured_executor(storage: Storage, codec: Codec) -> CeleryExecutor:
    """A Celery executor over ``storage`` sending with the configured app or broker."""
    app = config.celery_app()
    if app is None:
        broker = config.broker()
        app = _made_apps.get(broker)
        if app is None:
            app = _made_apps[broker] = sending_app(broker)
    return CeleryExecutor(
        storage,
        codec,
        app,
        settings=config.celery_engine_settings(),
        dispatch_grace=config.dispatch_grace(),
        client_only=config.client_only(),
    )
