"""The Celery executor: the same workflows on Celery workers.

Needs the ``celery`` extra: ``pip install 'pyworkflow-durable[celery]'``.

Layout: ``executor`` (``CeleryExecutor``: sending tasks, driving a run in a task, the sweep;
the engine does the work: ``_engine.leased`` drives a run, ``_engine.remote_attempts``
executes a step attempt), ``broker`` (the broker and the delivery
settings), ``configured`` (this process's executor from the settings), ``app`` (the tasks and
worker signals), ``sweeper`` (the worker bootstep that sweeps storage), ``_loop`` (the sync
bridge: one event loop per worker process). Users point Celery at ``pyworkflow.celery``.
"""

from pyworkflow.executors.celery.app import create_app, install
from pyworkflow.executors.celery.broker import broker_url
from pyworkflow.executors.celery.executor import CeleryExecutor

__all__ = ["CeleryExecutor", "broker_url", "create_app", "install"]
