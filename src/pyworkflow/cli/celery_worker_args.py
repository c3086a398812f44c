"""The ``celery worker`` options of ``pyworkflow worker run``, as the pyworkflow docs spell them.

``--loglevel``, ``--hostname``, ``--autoscale MIN,MAX`` (either order), ``--max-tasks-per-child``,
``--prefetch-multiplier``, ``--time-limit``, ``--soft-time-limit`` and any arguments after
``--`` go to the Celery worker as they are. The documentation's ``--workflow``, ``--step`` and
``--schedule`` split a deployment into workers per kind of task; here every worker executes
both of pyworkflow's tasks (a run's turns and its steps, routed by ``@workflow(queue=)`` and
``@step(queue=)``) and every worker's main process fires timers and schedules, so the three
flags are accepted and change nothing: each such worker serves all three. (``--beat`` is
``worker run``'s own option.)

With the local executor only ``--loglevel`` and the three flags apply; the other options are
a usage error naming the option.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from pyworkflow.cli.bridge import fail

__all__ = ["CeleryArgs", "celery_worker_options"]

_F = TypeVar("_F", bound=Callable[..., Any])
_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True)
class CeleryArgs:
    """The Celery-only options given to ``worker run`` (None: not given)."""

    loglevel: str | None = None
    hostname: str | None = None
    autoscale: tuple[int, int] | None = None
    max_tasks_per_child: int | None = None
    prefetch_multiplier: int | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    extra: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        """These options as ``celery worker`` arguments (``--loglevel`` aside)."""
        found = []
        if self.hostname is not None:
            found.append(f"--hostname={self.hostname}")
        if self.autoscale is not None:
            found.append(f"--autoscale={max(self.autoscale)},{min(self.autoscale)}")
        if self.max_tasks_per_child is not None:
            found.append(f"--max-tasks-per-child={self.max_tasks_per_child}")
        if self.prefetch_multiplier is not None:
            found.append(f"--prefetch-multiplier={self.prefetch_multiplier}")
        if self.time_limit is not None:
            found.append(f"--time-limit={self.time_limit:g}")
        if self.soft_time_limit is not None:
            found.append(f"--soft-time-limit={self.soft_time_limit:g}")
        return [*found, *self.extra]

    def refuse_locally(self) -> None:
        """With the local executor: a usage error for a Celery-only option; else apply it."""
        given = {
            "--hostname": self.hostname,
            "--autoscale": self.autoscale,
            "--max-tasks-per-child": self.max_tasks_per_child,
            "--prefetch-multiplier": self.prefetch_multiplier,
            "--time-limit": self.time_limit,
            "--soft-time-limit": self.soft_time_limit,
            "arguments after --": self.extra or None,
        }
        for option, value in given.items():
            if value is not None:
                fail(
                    f"{option} applies to a Celery worker (--executor celery, or runtime: "
                    "celery in pyworkflow.config.yaml); this worker is local"
                )
        if self.loglevel is not None:
            logging.getLogger("pyworkflow").setLevel(self.loglevel.upper())


def _autoscale(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        low, high = (int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not MIN,MAX (e.g. 2,10)") from None
    if min(low, high) < 0 or max(low, high) < 1:
        raise click.BadParameter(f"{value!r}: the most processes must be 1 or more")
    return (low, high)


def celery_worker_options(command: _F) -> _F:
    """Add the options above to ``command``; it receives them as ``celery_args``."""
    options = [
        *(
            click.option(
                f"--{kind}",
                f"kind_{kind}",
                is_flag=True,
                help="Accepted (the pyworkflow docs' split by task kind): every worker here "
                "executes turns and steps and fires due timers and schedules.",
            )
            for kind in ("workflow", "step", "schedule")
        ),
        click.option(
            "--loglevel",
            type=click.Choice(_LEVELS, case_sensitive=False),
            default=None,
            help="Log level of the worker (default info).",
        ),
        click.option("--hostname", default=None, help="Celery: the worker's node name."),
        click.option(
            "--autoscale",
            default=None,
            metavar="MIN,MAX",
            callback=_autoscale,
            help="Celery: between MIN and MAX pool processes, as the load asks.",
        ),
        click.option(
            "--max-tasks-per-child",
            type=click.IntRange(min=1),
            default=None,
            help="Celery: replace a pool process after this many tasks.",
        ),
        click.option(
            "--prefetch-multiplier",
            type=click.IntRange(min=1),
            default=None,
            help="Celery: messages each pool process reserves (default 1).",
        ),
        click.option(
            "--time-limit",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Celery: hard time limit of a task, in seconds.",
        ),
        click.option(
            "--soft-time-limit",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Celery: soft time limit of a task, in seconds.",
        ),
        click.argument("celery_extra", nargs=-1, type=click.UNPROCESSED),
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        for flag in ("kind_workflow", "kind_step", "kind_schedule"):
            kwargs.pop(flag)
        kwargs["celery_args"] = CeleryArgs(
            loglevel=kwargs.pop("loglevel"),
            hostname=kwargs.pop("hostname"),
            autoscale=kwargs.pop("autoscale"),
            max_tasks_per_child=kwargs.pop("max_tasks_per_child"),
            prefetch_multiplier=kwargs.pop("prefetch_multiplier"),
            time_limit=kwargs.pop("time_limit"),
            soft_time_limit=kwargs.pop("soft_time_limit"),
            extra=tuple(kwargs.pop("celery_extra")),
        )
        return command(**kwargs)

    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]
