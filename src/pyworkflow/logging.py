"""Structured logs: every record of a run carries its run id, workflow, step id and attempt.

pyworkflow logs through stdlib ``logging`` under the ``pyworkflow`` logger and configures no
handlers; ``JsonFormatter`` is there for users who want one JSON object per line.

Example:
    >>> import logging
    >>> handler = logging.StreamHandler()
    >>> handler.setFormatter(JsonFormatter())
    >>> logging.getLogger("pyworkflow").addHandler(handler)
"""

from __future__ import annotations

import json
import logging
from collections.abc import MutableMapping
from typing import Any

__all__ = ["JsonFormatter", "RunLogger", "run_logger"]

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


def run_logger(run_id: str, workflow: str) -> RunLogger:
    """A logger for one run."""
    return RunLogger(
        logging.getLogger("pyworkflow.run"),
        {"run_id": run_id, "workflow": workflow, "step_id": None, "attempt": None},
    )


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
