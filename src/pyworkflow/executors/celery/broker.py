"""The broker side of a Celery app: which broker, and the delivery settings a killed worker needs.

An app made here (``sending_app``) can send pyworkflow's tasks by name, which is all a client
process does; a worker's app also carries the tasks themselves (``app.install``). Delivery
settings are the ones that make a killed worker lose nothing: ``acks_late`` (a message is
acknowledged only when its task is done) with ``reject_on_worker_lost`` (a pool process that
dies mid-task has its message delivered again), and a prefetch of one.
"""

from __future__ import annotations

import os

from celery import Celery

from pyworkflow import env_names
from pyworkflow.executors.celery.executor import DEFAULT_QUEUE

__all__ = ["DEFAULT_BROKER", "broker_url", "delivery_settings", "sending_app"]

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


def broker_url() -> str:
    """The broker the environment names (``pyworkflow.env_names``), else local Redis.

    ``PYWORKFLOW_BROKER``, else ``PYWORKFLOW_CELERY_BROKER``, else ``CELERY_BROKER_URL``.
    """
    return env_names.broker() or DEFAULT_BROKER


def delivery_settings(app: Celery) -> None:
    """Give ``app`` the delivery settings pyworkflow's tasks rely on."""
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=DEFAULT_QUEUE,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )


def sending_app(broker: str | None = None, *, visibility_timeout: float | None = None) -> Celery:
    """A Celery app on ``broker`` (default: ``broker_url()``) with pyworkflow's delivery settings.

    Args:
        broker: the broker URL (Redis or RabbitMQ).
        visibility_timeout: Redis only: seconds after which a message taken by a worker that
            vanished is delivered again (also ``PYWORKFLOW_VISIBILITY_TIMEOUT``; Celery's
            default is an hour).
    """
    app = Celery("pyworkflow", broker=broker or broker_url(), set_as_current=False)
    timeout = visibility_timeout
    if timeout is None and os.environ.get("PYWORKFLOW_VISIBILITY_TIMEOUT"):
        timeout = float(os.environ["PYWORKFLOW_VISIBILITY_TIMEOUT"])
    if timeout is not None:
        app.conf.broker_transport_options = {"visibility_timeout": timeout}
    delivery_settings(app)
    return app
