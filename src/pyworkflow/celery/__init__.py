"""Point Celery here: ``celery -A pyworkflow.celery worker`` (and ``beat``: ``scheduler.py``).

``celery -A pyworkflow.celery.tasks worker``, the pyworkflow documentation's spelling, names
the same app; so do its queues (``-Q pyworkflow.workflows,pyworkflow.steps,...``): a worker
told to consume them consumes pyworkflow's own (``executors/celery/app.py``).

The app's broker is ``PYWORKFLOW_BROKER`` (else ``CELERY_BROKER_URL``, else Redis on
localhost); its workers find workflows through ``PYWORKFLOW_MODULES`` and storage through
``PYWORKFLOW_STORAGE``, the same settings as ``pyworkflow worker run``. Clients send to it with
``configure(executor="celery", broker=...)``.

Example:
    ``PYWORKFLOW_BROKER=redis://localhost:6379/0 PYWORKFLOW_MODULES=myapp.workflows``
    ``PYWORKFLOW_STORAGE=postgresql://db/app celery -A pyworkflow.celery worker``
"""

from pyworkflow.executors.celery import create_app

__all__ = ["app"]

app = create_app()
"""The Celery app of ``celery -A pyworkflow.celery``."""
