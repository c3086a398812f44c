"""Exceptions as plain data in the log, and back.

A failure is logged as ``{"type", "message", "traceback"}``, plus ``"args"`` when the
exception's arguments are plain scalars and ``"attributes"``: its instance attributes that
the codec can encode without pickle (``StepTimeoutError.timeout``, a user error's ``code``).
It is rebuilt from the type's import path, never through pickle (DESIGN §1), as the original
class whenever that class can be imported, so ``except TheirType`` catches it on the first
execution and on every replay alike:

1. calling the class with the logged arguments (or the message), as old logs need, kept
   only if it gives back the logged message;
2. else, for constructors that take something other than the message (several required or
   keyword-only arguments, a message formatted from them), the instance is made without
   calling ``__init__``, as pickle does: ``cls.__new__``, the logged ``args``, the attributes;
3. else (a ``__str__`` that needs an attribute that could not be logged) the same, in a
   subclass of the class whose ``__str__`` gives the logged message.

``StepFailedError`` stands in only for a class that cannot be imported or instantiated. The
same record gives the same exception on every replay.
"""

from __future__ import annotations

import importlib
import math
import traceback
from typing import Any

from pyworkflow.events import RunStatus
from pyworkflow.exceptions import CancellationError, CorruptRecordError, StepFailedError
from pyworkflow.serialization import Codec
from pyworkflow.storage.records import RunRecord

__all__ = ["error_record", "rebuild_error", "takeover_refusal", "type_path", "unreadable_outcome"]


_SCALARS = frozenset({str, int, float, bool, type(None)})
# No pickle either way: an error's attributes are data, and decoding them runs no code.
_ATTRIBUTES = Codec(allow_pickle=False)
# Python's own bookkeeping, not what the error says.
_NOT_ATTRIBUTES = frozenset({"__notes__"})


def type_path(cls: type) -> str:
    """``module.QualName`` of a class (builtins keep their short name)."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _scalar(value: object) -> bool:
    if type(value) is float:
        return math.isfinite(value)  # NaN and infinities are not JSON: the log refuses them
    return type(value) in _SCALARS


def _attributes(exc: BaseException) -> dict[str, Any]:
    """The instance attributes of ``exc`` that encode without pickle, encoded."""
    encoded: dict[str, Any] = {}
    for name, value in vars(exc).items():
        if name in _NOT_ATTRIBUTES:
            continue
        try:
            encoded[name] = _ATTRIBUTES.encode(value, path=f"attribute {name!r}")
        except Exception:  # a connection, a response object...: the message tells of it
            continue
    return encoded


def error_record(exc: BaseException) -> dict[str, Any]:
    """The loggable record of an exception: type path, message, traceback text, and data."""
    record: dict[str, Any] = {
        "type": type_path(type(exc)),
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }
    # Plain constructor arguments rebuild the exception exactly (str(KeyError("k")) is "'k'").
    if exc.args and all(_scalar(a) for a in exc.args):
        record["args"] = list(exc.args)
    attributes = _attributes(exc)
    if attributes:
        record["attributes"] = attributes
    return record


def takeover_refusal(
    run: RunRecord, max_recoveries: int, *, recover: bool = True
) -> dict[str, Any] | None:
    """Why a run just taken must fail before it is replayed, as an error record; or None.

    Either it was taken over more than ``max_recoveries`` times without progress (its worker
    keeps dying, or its driver keeps crashing, on it), or its stored row is damaged: a record
    that cannot be read now never will be, so retrying it would only loop. With ``recover``
    False (``@workflow(recover_on_worker_loss=False)``), any take-over from a worker that
    died or stalled past its lease fails the run (``WorkerLostError``).
    """
    if not recover and run.previous_owner is not None:
        reason = (
            f"run {run.run_id!r} lost its worker ({run.previous_owner}: it died, or stalled "
            "past its lease) and its workflow says recover_on_worker_loss=False, so it is "
            "failed rather than run again"
        )
        return {"type": "WorkerLostError", "message": reason, "traceback": ""}
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


def _decoded(attributes: Any) -> dict[str, Any]:
    if not isinstance(attributes, dict):
        return {}
    decoded = {}
    for name, value in attributes.items():
        try:
            decoded[name] = _ATTRIBUTES.decode(value)
        except Exception:  # e.g. a class that no longer exists: the rest still come back
            continue
    return decoded


def _says(exc: BaseException, message: str) -> bool:
    try:
        return str(exc) == message
    except Exception:  # a __str__ that needs what the log could not keep
        return False


def _called(cls: type[Exception], args: tuple[Any, ...], attributes: dict[str, Any]) -> Exception:
    exc = cls(*args)
    exc.__dict__.update(attributes)
    return exc


def _made(cls: type[Exception], args: tuple[Any, ...], attributes: dict[str, Any]) -> Exception:
    # What unpickling does, minus the constructor, which may want other arguments.
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(attributes)
    return exc


def _telling(cls: type[Exception], message: str) -> type[Exception]:
    """A subclass of ``cls`` under the same names whose ``__str__`` is the logged message."""

    def __str__(self: Exception) -> str:
        return message

    names = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    return type(cls.__name__, (cls,), {**names, "__str__": __str__})


def _rebuilt(cls: type[Exception], record: dict[str, Any]) -> Exception | None:
    """``cls`` rebuilt from ``record`` saying the logged message, or None if it cannot be."""
    message = str(record.get("message", ""))
    logged_args = record.get("args")
    args = tuple(logged_args) if isinstance(logged_args, list) else (message,)
    attributes = _decoded(record.get("attributes"))
    for build in (_called, _made):
        try:
            exc = build(cls, args, attributes)
        except Exception:
            continue
        if _says(exc, message):
            return exc
    try:
        return _made(_telling(cls, message), args, attributes)
    except Exception:  # a class that cannot be subclassed or made without its constructor
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
        exc = _rebuilt(cls, record)
        if exc is not None:
            exc.__notes__ = [
                f"raised by step {step_id!r}; logged traceback:\n{record.get('traceback', '')}"
            ]
            return exc
    return StepFailedError(step_id, type_name, message)
