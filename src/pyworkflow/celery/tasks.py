"""``celery -A pyworkflow.celery.tasks worker``: the pyworkflow documentation's path to the app.

The same app as ``pyworkflow.celery`` (its docstring says how it is configured).
"""

from pyworkflow.celery import app

__all__ = ["app"]
