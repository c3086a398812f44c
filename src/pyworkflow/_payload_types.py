"""Typed hook payloads: recording a payload type by import path, and validating against it.

``define_hook(name, PayloadType)`` records ``"module:QualName"`` in the hook's row, so that
``resume_hook`` can validate a payload in a process that never imported the workflow: it
imports the type by that path. Three kinds of type are understood: pydantic models (when
pydantic is installed), dataclasses and TypedDicts. A payload that does not fit raises
``InvalidHookPayloadError`` naming the field, before anything is written.

Validation of dataclass and TypedDict fields checks presence, unknown keys, and the type of
fields annotated with plain classes (``int``, ``str``, another dataclass ...); richer
annotations (``list[int]``, unions) are accepted as they come.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
import warnings
from typing import Any, is_typeddict

from pyworkflow.exceptions import ConfigurationError, InvalidHookPayloadError

__all__ = ["check_payload_type", "load_type", "type_path", "validate"]


def _is_pydantic(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "model_validate") and hasattr(tp, "model_fields")


def check_payload_type(name: str, tp: Any) -> None:
    """Refuse a payload type ``resume_hook`` could not validate or import.

    A type defined in ``__main__`` (the script being run) is only warned about: it imports
    in this process, not in another.

    Raises:
        InvalidHookPayloadError: not a pydantic model, dataclass or TypedDict, or defined
            where no process can import it (inside a function).
    """
    if not (_is_pydantic(tp) or dataclasses.is_dataclass(tp) or is_typeddict(tp)):
        raise InvalidHookPayloadError(
            name, "", f"payload type {tp!r} is not a dataclass, TypedDict or pydantic model"
        )
    if "<locals>" in getattr(tp, "__qualname__", ""):
        raise InvalidHookPayloadError(
            name,
            "",
            f"payload type {tp.__qualname__!r} is defined inside a function; "
            "define it at module level so resume_hook can import it",
        )
    if tp.__module__ == "__main__":
        # A warning, not an error: in this very process resume_hook can import it (a script
        # that resumes its own hooks works). stacklevel 3: the user's define_hook() call.
        type_name = tp.__qualname__
        warnings.warn(
            f"hook {name!r}: payload type {type_name} is defined in the script being run, so it "
            f"is recorded as '__main__:{type_name}', which no other process can import: "
            "`pyworkflow hooks resume` and resume_hook() in another process cannot validate "
            f"payloads; move {type_name} into a module of its own (e.g. payloads.py) and import "
            "it from there",
            UserWarning,
            stacklevel=3,
        )


def type_path(tp: Any) -> str:
    """``"module:QualName"`` of a payload type."""
    return f"{tp.__module__}:{tp.__qualname__}"


def load_type(path: str) -> Any:
    """Import the payload type recorded as ``path``.

    Raises:
        ConfigurationError: the module or the name cannot be imported here.
    """
    module_name, _, qualname = path.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"cannot import hook payload type {path!r} to validate the payload: {exc}"
        ) from exc
    return found


def validate(hook_name: str, tp: Any, payload: Any) -> Any:
    """``payload`` as an instance of ``tp`` (a dict for a TypedDict).

    Raises:
        InvalidHookPayloadError: the payload does not fit; the error names the field.
    """
    if isinstance(tp, type) and not is_typeddict(tp) and isinstance(payload, tp):
        return payload
    if _is_pydantic(tp):
        return _validate_pydantic(hook_name, tp, payload)
    return _validate_fields(hook_name, tp, payload, "")


def _validate_pydantic(hook_name: str, tp: Any, payload: Any) -> Any:
    try:
        return tp.model_validate(payload)
    except Exception as exc:  # pydantic.ValidationError, without importing pydantic here
        errors = getattr(exc, "errors", None)
        if callable(errors):
            first = errors()[0]
            field = ".".join(str(p) for p in first.get("loc", ()))
            raise InvalidHookPayloadError(hook_name, field, str(first.get("msg"))) from exc
        raise InvalidHookPayloadError(hook_name, "", str(exc)) from exc


def _validate_fields(hook_name: str, tp: Any, payload: Any, prefix: str) -> Any:
    if not isinstance(payload, dict):
        raise InvalidHookPayloadError(
            hook_name, prefix.rstrip("."), f"expected an object, got {type(payload).__name__}"
        )
    hints = typing.get_type_hints(tp)
    if is_typeddict(tp):
        required = set(tp.__required_keys__)
    else:
        required = {
            f.name
            for f in dataclasses.fields(tp)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
    for key in sorted(required - payload.keys()):
        raise InvalidHookPayloadError(hook_name, prefix + key, "missing")
    for key in sorted(payload.keys() - hints.keys()):
        raise InvalidHookPayloadError(hook_name, prefix + str(key), "not a field of the payload")
    values = {}
    for key, value in payload.items():
        values[key] = _check_value(hook_name, hints[key], value, prefix + key)
    return values if is_typeddict(tp) else tp(**values)


def _check_value(hook_name: str, hint: Any, value: Any, field: str) -> Any:
    if dataclasses.is_dataclass(hint) or is_typeddict(hint):
        return _validate_fields(hook_name, hint, value, field + ".")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(hint, type) and hint is not typing.Any:
        wrong_bool = hint is int and isinstance(value, bool)
        if wrong_bool or not isinstance(value, hint):
            raise InvalidHookPayloadError(
                hook_name, field, f"expected {hint.__name__}, got {type(value).__name__}"
            )
    return value
