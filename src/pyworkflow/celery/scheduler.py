"""``celery beat --scheduler pyworkflow.celery.scheduler:PyWorkflowScheduler``.

The spelling the pyworkflow documentation gives for Celery beat; the class is
``pyworkflow.executors.celery.beat.BeatScheduler``, which says what it does and why a
deployment whose workers fire schedules needs no beat.
"""

from pyworkflow.executors.celery.beat import BeatScheduler

__all__ = ["BeatScheduler", "PyWorkflowScheduler"]

PyWorkflowScheduler = BeatScheduler
"""The documented name of :class:`BeatScheduler`."""
