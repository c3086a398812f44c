"""Structured logs: every record of a run carries its run id, workflow, step id and attempt.

pyworkflow logs through stdlib ``logging`` under the ``pyworkflow`` logger and configures no
handlers. Its records about a run carry ``run_id`` and ``workflow`` as record attributes, and
those about a step attempt also ``step_id`` and ``attempt`` (the first attempt is 1). What you
find where:

- ``pyworkflow.run``: a run's turns. DEBUG: a turn begins (events replayed), a step attempt
  starts. INFO: a step completed, the run suspended, a cancellation was requested, the run
  completed, was cancelled or continued as new. WARNING: a step attempt failed and will be
  retried, the run was lost to another worker. ERROR: a step failed for good, the run failed
  (tracebacks are in its history: ``pyworkflow runs show``), diverged from its history, or ran
  out of recoveries.
- ``pyworkflow.executor``: claiming and leases. WARNING: a run is taken over from a dead
  worker, a lease was lost, a workflow is not registered here.

``JsonFormatter`` writes one JSON object per line with those fields as keys;
``RunContextFilter`` adds them to your own records logged inside steps and workflows.

Example:
    >>> import logging
    >>> handler = logging.StreamHandler()
    >>> handler.setFormatter(JsonFormatter())
    >>> handler.addFilter(RunContextFilter())  # your records inside steps get the ids too
    >>> logging.getLogger("pyworkflow").addHandler(handler)
    >>> logging.getLogger("pyworkflow").setLevel(logging.INFO)
"""

from __future__ import annotations

import json
import logging
from collections.abc import MutableMapping
from typing import Any

from pyworkflow._engine.context import current_activation, current_step

__all__ = ["JsonFormatter", "RunContextFilter", "RunLogger", "run_logger"]

_FIELDS = ("run_id", "workflow", "step_id", "attempt")


class RunLogger(logging.LoggerAdapter[logging.Logger]):
    """Adds the run's ids to every record (``record.run_id``, ``record.workflow`` ...)."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        """Merge the run's fields under any per-call ``extra`` (step id, attempt)."""
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return f"[{extra['run_id']}] {msg}", kwargs


def run_logger(
    run_id: str,
    workflow: str | None,
    *,
    name: str = "pyworkflow.run",
    step_id: str | None = None,
    attempt: int | None = None,
) -> RunLogger:
    """A logger for one run (or one step attempt of it), logging under ``name``.

    Its messages start with ``[run_id]``; a call's own ``extra`` (e.g. ``step_id`` and
    ``attempt`` for a record about a step) wins over the fields given here.
    """
    return RunLogger(
        logging.getLogger(name),
        {"run_id": run_id, "workflow": workflow, "step_id": step_id, "attempt": attempt},
    )


class RunContextFilter(logging.Filter):
    """Adds the current run's fields to records logged inside a step or workflow.

    Attach it to a handler (a filter on a logger sees only that logger's own records): every
    record the handler gets from code running in a step then carries ``run_id``, ``workflow``,
    ``step_id`` and ``attempt``, and from workflow code ``run_id`` and ``workflow``, whatever
    logger it came from. Fields a record already has are kept. Workflow code is replayed, so
    its records repeat on replay; log from steps what must appear once.

    Example:
        >>> handler = logging.StreamHandler()
        >>> handler.addFilter(RunContextFilter())
        >>> handler.setFormatter(JsonFormatter())
        >>> logging.getLogger().addHandler(handler)
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Fill in the fields; never drops a record."""
        step = current_step.get()
        if step is not None:
            fields: tuple[tuple[str, Any], ...] = (
                ("run_id", step.run_id),
                ("workflow", step.workflow_name),
                ("step_id", step.step_id),
                ("attempt", step.attempt),
            )
        else:
            activation = current_activation.get()
            if activation is None:
                return True
            fields = (("run_id", activation.run_id), ("workflow", activation.workflow.name))
        for key, value in fields:
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the run fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line."""
        data: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)
