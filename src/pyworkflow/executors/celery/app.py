"""The Celery app: pyworkflow's two tasks, their delivery settings, and the worker's set-up.

``create_app(broker)`` makes an app; ``install(app)`` adds pyworkflow to a user's own app.
Either way a worker started with ``celery -A <module> worker`` then:

- imports the user's workflow modules (``PYWORKFLOW_MODULES`` / ``configure(modules=...)``)
  before it forks its pool, so every pool process knows them;
- opens storage in each pool process after the fork, never inheriting a connection;
- runs every task body on one long-lived event loop per process (``_loop``);
- runs the sweeper in a thread of its main process (``sweeper``), so timers, hooks, children
  and lost messages need no ``celery beat``. ``PYWORKFLOW_SWEEP_INTERVAL=0`` turns it off
  (for a deployment that runs it elsewhere, e.g. one ``pyworkflow worker run
  --executor celery``).

The delivery settings (``acks_late``, ``reject_on_worker_lost``, a prefetch of one) are
``broker``'s; a client process only sends, with an app of its own (``configured``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery import Celery, signals

from pyworkflow import config, runtime
from pyworkflow.executors.celery._loop import run_in_process_loop
from pyworkflow.executors.celery.broker import delivery_settings, sending_app
from pyworkflow.executors.celery.executor import ADVANCE_TASK, STEP_TASK, CeleryExecutor
from pyworkflow.queues import DEFAULT_QUEUE

if TYPE_CHECKING:
    from celery import Task

__all__ = ["create_app", "install"]


def create_app(broker: str | None = None, *, visibility_timeout: float | None = None) -> Celery:
    """A Celery app carrying pyworkflow's tasks.

    Example:
        >>> app = create_app("redis://localhost:6379/0")  # then: celery -A mymod worker

    Args:
        broker: the broker URL (Redis or RabbitMQ); default: ``broker_url()``.
        visibility_timeout: Redis only: seconds after which a message taken by a worker that
            vanished is delivered again (also ``PYWORKFLOW_VISIBILITY_TIMEOUT``; Celery's
            default is an hour).
    """
    return install(sending_app(broker, visibility_timeout=visibility_timeout))


def install(app: Celery) -> Celery:
    """Add pyworkflow's tasks and worker set-up to ``app``; returns it.

    Example:
        >>> install(my_app)
        >>> configure(executor="celery", celery_app=my_app)
    """
    delivery_settings(app)
    options: dict[str, Any] = {
        "bind": True,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "ignore_result": True,
    }
    app.task(name=ADVANCE_TASK, **options)(_advance)
    app.task(name=STEP_TASK, **options)(_step)
    from pyworkflow.executors.celery.sweeper import SweeperStep

    app.steps["worker"].add(SweeperStep)
    return app


def _advance(task: Task[Any, Any], run_id: str) -> None:
    """``pyworkflow.advance``: drive the run as far as it goes here."""

    async def body() -> None:
        await (await _executor_for(task.app)).advance(run_id)

    run_in_process_loop(body())


def _step(task: Task[Any, Any], run_id: str, step_id: str, attempt: int) -> None:
    """``pyworkflow.step``: execute one attempt of a step and log its outcome."""

    async def body() -> None:
        executor = await _executor_for(task.app)
        # One owner per delivery: a redelivered message is a new delivery and waits for the
        # lease of one that may still be running (Redis redelivers after its visibility
        # timeout), unless that one's process is known dead (``_engine.presence``).
        delivery = f"{executor.engine.owner}/{task.request.id}"
        await executor.execute_step(run_id, step_id, attempt, delivery)

    run_in_process_loop(body())


async def _executor_for(app: Celery) -> CeleryExecutor:
    """This process's Celery executor over ``app``, configured and opened on first use."""
    if not config.uses_celery_app(app):
        config.configure(executor="celery", celery_app=app)
    executor = (await runtime.get_runtime()).executor
    if not isinstance(executor, CeleryExecutor):
        raise RuntimeError("pyworkflow task ran outside a runtime with the Celery executor")
    return executor


def _on_worker_init(**_: Any) -> None:
    """In the worker's main process, before the pool forks: import the user's modules."""
    from pyworkflow import registry

    registry.import_modules(config.configured_modules())


# The queues of the pyworkflow documentation's Celery app (a worker per kind of task): here
# both tasks go to the run's or the step's queue, by default pyworkflow's.
SEED_QUEUES = frozenset(
    {"pyworkflow.default", "pyworkflow.workflows", "pyworkflow.steps", "pyworkflow.schedules"}
)


def _on_after_setup(instance: Any = None, **_: Any) -> None:
    """Consume our default queue too where the documentation's queues are consumed.

    So that their command lines (``-Q pyworkflow.workflows,pyworkflow.steps``...) serve runs.
    """
    app = getattr(instance, "app", None)
    if app is None or ADVANCE_TASK not in app.tasks:
        return  # not a worker of pyworkflow's tasks
    queues = app.amqp.queues
    consumed = set(queues.consume_from or ())
    if consumed & SEED_QUEUES and DEFAULT_QUEUE not in consumed:
        queues.select_add(DEFAULT_QUEUE)


def _on_worker_process_init(**_: Any) -> None:
    """In each pool process just forked: forget any storage or runtime of the parent."""
    runtime.forget_inherited()


signals.worker_init.connect(_on_worker_init, weak=False)
signals.worker_process_init.connect(_on_worker_process_init, weak=False)
signals.celeryd_after_setup.connect(_on_after_setup, weak=False)
