"""Log handlers for the command line: the library configures none, the CLI configures these.

Records go to stderr, one line each: readable text (time, level, logger, message, where the
message of a run's record starts with ``[run_id]`` and a step's record ends with its step id)
or, with ``--log-format json``, one JSON object per line through ``JsonFormatter``.
"""

from __future__ import annotations

import logging
import sys

from pyworkflow.logging import JsonFormatter

__all__ = ["LOG_FORMATS", "TextFormatter", "setup_logging"]

LOG_FORMATS = ("text", "json")
"""The values of ``--log-format``."""


class TextFormatter(logging.Formatter):
    """``2024-05-01 12:00:00,123 INFO    pyworkflow.run [run_ab12] step charge#1 completed``.

    A record carrying a step id (see ``pyworkflow.logging.RunLogger``) ends with
    ``(step=charge#1 attempt=2)`` unless its message already names the step.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line (a traceback, if any, follows on the next lines)."""
        line = super().format(record)
        step_id = getattr(record, "step_id", None)
        if step_id and step_id not in record.getMessage():
            attempt = getattr(record, "attempt", None)
            suffix = f" attempt={attempt}" if attempt else ""
            first, sep, rest = line.partition("\n")
            line = f"{first} (step={step_id}{suffix}){sep}{rest}"
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
