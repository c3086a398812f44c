"""Log handlers for the command line: the library configures none, the CLI configures these.

Records go to stderr, one line each: readable text (time, level, logger, message, where the
message of a run's record starts with ``[run_id]`` and a step's record ends with its step id
and attempt) or, with ``--log-format json``, one JSON object per line through ``JsonFormatter``.
"""

from __future__ import annotations

import logging
import sys

from pyworkflow.logging import JsonFormatter

__all__ = ["LOG_FORMATS", "TextFormatter", "setup_logging"]

LOG_FORMATS = ("text", "json")
"""The values of ``--log-format``."""


class TextFormatter(logging.Formatter):
    """One line a record: time, level, logger, message, then what the message leaves out.

    ``2024-05-01 12:00:00,123 INFO    pyworkflow.run [run_ab12] step c#1 completed (attempt=2)``

    A run's own records start with ``[run_id]`` (see ``pyworkflow.logging.RunLogger``). The
    run fields a record carries that its message does not state follow in parentheses:
    ``run=`` (your records, through ``RunContextFilter``), ``step=`` and ``attempt=``.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line (a traceback, if any, follows on the next lines)."""
        line = super().format(record)
        message = record.getMessage()
        run_id = getattr(record, "run_id", None)
        step_id = getattr(record, "step_id", None)
        attempt = getattr(record, "attempt", None)
        fields = []
        if run_id and run_id not in message:
            fields.append(f"run={run_id}")
        if step_id and step_id not in message:
            fields.append(f"step={step_id}")
        if step_id and attempt and "attempt" not in message:
            fields.append(f"attempt={attempt}")
        if fields:
            first, sep, rest = line.partition("\n")
            line = f"{first} ({' '.join(fields)}){sep}{rest}"
        return line


def setup_logging(log_format: str, level: str) -> None:
    """Send the ``pyworkflow`` loggers to stderr in ``log_format`` at ``level``.

    Idempotent: calling it again (e.g. in tests that invoke the CLI twice in one process)
    replaces the handler it installed before instead of adding a second one.

    Args:
        log_format: ``"text"`` or ``"json"``.
        level: a stdlib level name such as ``"INFO"``.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.set_name("pyworkflow-cli")
    logger = logging.getLogger("pyworkflow")
    for old in [h for h in logger.handlers if h.get_name() == "pyworkflow-cli"]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
