"""The lease records of the Storage protocol: who holds a run or a step attempt.

The processes that announced themselves as lease owners, the number of take-overs that makes a
run a suspect, and the leases and offers of step attempts executed away from their run's
driver. Re-exported by ``pyworkflow.storage.records``, their public home.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SUSPECT_RECOVERIES", "OwnerRecord", "StepLease", "StepOffer"]


@dataclass(frozen=True, slots=True)
class OwnerRecord:
    """A process that announced itself as a lease owner (a worker, or a process running runs).

    Attributes:
        owner: its owner name (``host:pid:id``), the ``lease_owner`` of the runs it holds.
        host, pid: where it runs.
        started_at: when it announced itself (None where storage does not keep it).
        alive: whether storage sees it alive now (its lock held); a dead one is forgotten at
            the next look for dead owners, and its runs taken over.
    """

    owner: str
    host: str
    pid: int
    started_at: float | None
    alive: bool


SUSPECT_RECOVERIES = 2
"""A run taken over this many times in a row without progress is a *suspect*.

One take-over is the ordinary recovery from a dead worker, and every run that worker held
shares it, so a killed process's runs are all taken over at once. A second one in a row means
the run may be what kills its workers: a claim can then ask for suspects apart
(``claim_runs(suspects=...)``), so an executor can hold one at a time and a crash is charged
to the run that caused it rather than to every run beside it.
"""


@dataclass(frozen=True, slots=True)
class StepLease:
    """The lease of one attempt of a step executed away from its run's driver (a Celery step task).

    Duplicate broker messages for one attempt find its lease taken and stand back; a worker
    executing a long step renews it (heartbeat); and ``deliveries`` counts how often the attempt
    was taken, so a step that keeps killing its worker can be failed after a bounded number.

    Attributes:
        run_id: the step's run.
        step_id: the step's id in its run (``name#n``).
        attempt: the attempt the lease is for (1, 2, ...).
        owner: who holds it (a worker's id for that task), or None.
        lease_expires_at: when it lapses unless renewed, or None.
        deliveries: how many times this attempt was taken (acquired); a worker that keeps
            dying shows here.
        queue: the queue the attempt was offered to (``offer_steps``: a step of a local
            worker's queue), or None for a Celery step task's lease.
        offered_at: when it was offered, or None.
    """

    run_id: str
    step_id: str
    attempt: int
    owner: str | None
    lease_expires_at: float | None
    deliveries: int
    queue: str | None = None
    offered_at: float | None = None


@dataclass(frozen=True, slots=True)
class StepOffer:
    """An attempt of a step offered to the local workers of a queue (``Storage.offer_steps``).

    Attributes:
        step_id: the step's id in its run (``name#n``).
        attempt: the attempt to execute (its STEP_STARTED is logged).
        queue: the queue whose workers may execute it.
    """

    step_id: str
    attempt: int
    queue: str


# Their public home: type paths in encoded values, reprs and pickles name it, as before the split.
for _name in __all__:
    if isinstance(globals()[_name], type):
        globals()[_name].__module__ = "pyworkflow.storage.records"
