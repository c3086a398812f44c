"""Exceptions as plain data in the log, and back.

A failure is logged as ``{"type", "message", "traceback"}`` and rebuilt from the type's import
path and the message, never through pickle (DESIGN §1): the original class when it can be
imported and constructed from its message, ``StepFailedError`` otherwise. The same record gives
the same exception on every replay.
"""

from __future__ import annotations

import importlib
import traceback
from typing import Any

from pyworkflow._engine.events import RunStatus
from pyworkflow.exceptions import CancellationError, CorruptRecordError, StepFailedError
from pyworkflow.storage.protocol import RunRecord

__all__ = ["error_record", "rebuild_error", "takeover_refusal", "type_path", "unreadable_outcome"]


_PLAIN = frozenset({str, int, float, bool, type(None)})


def type_path(cls: type) -> str:
    """``module.QualName`` of a class (builtins keep their short name)."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def error_record(exc: BaseException) -> dict[str, Any]:
    """The loggable record of an exception: type path, message, traceback text."""
    record: dict[str, Any] = {
        "type": type_path(type(exc)),
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }
    # Plain constructor arguments rebuild the exception exactly (str(KeyError("k")) is "'k'").
    if exc.args and all(type(a) in _PLAIN for a in exc.args):
        record["args"] = list(exc.args)
    return record


def takeover_refusal(run: RunRecord, max_recoveries: int) -> dict[str, Any] | None:
    """Why a run just taken must fail before it is replayed, as an error record; or None.

    Either it was taken over more than ``max_recoveries`` times without progress (its worker
    keeps dying, or its driver keeps crashing, on it), or its stored row is damaged: a record
    that cannot be read now never will be, so retrying it would only loop.
    """
    if run.recovery_count > max_recoveries:
        reason = (
            f"run {run.run_id!r} was taken over {run.recovery_count} times without "
            "progress: its worker keeps dying, or failing (see its log), while running it"
        )
        return {"type": "RecoveryLimitExceeded", "message": reason, "traceback": ""}
    if run.damage is not None:
        return error_record(run.damage)
    return None


def unreadable_outcome(record: RunRecord) -> CorruptRecordError | None:
    """The damage that hides how an ended run ended (its status, result or error), or None.

    A waiter must raise it rather than read the stand-in: a completed run whose result cell is
    damaged would otherwise seem to have returned None.
    """
    damage = record.damage
    if damage is None:
        return None
    outcome = {RunStatus.COMPLETED: "result", RunStatus.FAILED: "error"}.get(record.status)
    return damage if damage.column in ("status", outcome) else None


def _import_class(path: str) -> type | None:
    parts = path.split(".") if "." in path else ["builtins", path]
    # A nested class (Outer.Inner) has dots in its qualname: try the longest module first.
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
        return obj if isinstance(obj, type) else None
    return None


def rebuild_error(record: dict[str, Any], step_id: str) -> BaseException:
    """The exception a workflow sees for a failed step's logged ``record``."""
    type_name, message = record.get("type", ""), record.get("message", "")
    try:
        cls = _import_class(type_name)
    except Exception:
        cls = None
    if cls is CancellationError:
        return CancellationError(message or None)
    if cls is not None and issubclass(cls, Exception):
        args = record.get("args")
        try:
            exc = cls(*args) if isinstance(args, list) else cls(message)
        except Exception:
            pass
        else:
            exc.__notes__ = [
                f"raised by step {step_id!r}; logged traceback:\n{record.get('traceback', '')}"
            ]
            return exc
    return StepFailedError(step_id, type_name, message)
