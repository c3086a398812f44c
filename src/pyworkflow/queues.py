"""Task queues: which workers execute a run.

Every run belongs to one queue, stored on its row: its workflow's ``@workflow(queue=...)``,
else :data:`DEFAULT_QUEUE`. A worker serves the queues it was given (``pyworkflow worker run
-Q billing,pyworkflow``, ``configure(queues=...)``, ``PYWORKFLOW_QUEUES``), by default only
:data:`DEFAULT_QUEUE`, and claims only runs of those; a run of a queue no worker serves waits
in storage, visibly (``pyworkflow runs show``), until one does.

The default queue is named ``pyworkflow`` as on the Celery executor, where the same name is the
broker queue both of its tasks go to unless a step names its own: ``-Q pyworkflow,billing``
means the same set of queues to either executor.

A leaf: it imports only the error tree, so storage, the engine and the CLI all may use it.
"""

from __future__ import annotations

from pyworkflow.exceptions import ConfigurationError

__all__ = ["DEFAULT_QUEUE", "check_queues", "queue_problem", "split_queues"]

DEFAULT_QUEUE = "pyworkflow"
"""The queue of runs whose workflow names none, and the one a worker serves unless told."""


def queue_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a queue name, or None if it is a good one.

    A queue name is a non-empty string without commas (lists of queues are comma separated)
    or surrounding whitespace. Callers raise their own typed error with this text.

    Example:
        >>> queue_problem("billing") is None
        True
        >>> queue_problem("")
        "a queue name must be a non-empty string, not ''"
    """
    if not isinstance(value, str) or not value:
        return f"a queue name must be a non-empty string, not {value!r}"
    if value != value.strip():
        return f"a queue name has no surrounding whitespace: {value!r}"
    if "," in value:
        return f"a queue name cannot contain a comma (lists of queues use them): {value!r}"
    return None


def split_queues(text: str) -> list[str]:
    """The queue names of a comma-separated list (``"billing, pyworkflow"``), in order, once each.

    Raises:
        ValueError: the list names no queue, or an empty one (``"a,,b"``); the message quotes
            the text.
    """
    names = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not name for name in names):
        raise ValueError(f"expected queue names separated by commas, not {text!r}")
    return list(dict.fromkeys(names))


def check_queues(value: object, *, source: str) -> tuple[str, ...]:
    """The queue names of ``value`` (a list or tuple, or a comma-separated string), checked.

    Duplicates are dropped, the order kept.

    Example:
        >>> check_queues("billing,pyworkflow", source="PYWORKFLOW_QUEUES")
        ('billing', 'pyworkflow')

    Raises:
        ConfigurationError: no queue, or a bad name; the message starts with ``source``.
    """
    if isinstance(value, str):
        try:
            return tuple(split_queues(value))
        except ValueError as exc:
            raise ConfigurationError(f"{source}: {exc}") from exc
    if not isinstance(value, list | tuple) or not value:
        raise ConfigurationError(
            f"{source}: expected a non-empty list of queue names, not {value!r}"
        )
    for name in value:
        if (problem := queue_problem(name)) is not None:
            raise ConfigurationError(f"{source}: {problem}")
    return tuple(dict.fromkeys(value))
