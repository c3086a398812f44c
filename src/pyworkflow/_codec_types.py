"""How the codec writes the values JSON lacks: one tagged node per type, and back.

``TYPE_ENCODERS`` maps an exact type (tuple, set, datetime, date, time, timedelta, UUID,
Decimal, bytes ...) to a function building its ``{"__pw__": TAG, ...}`` node, and
``TYPE_DECODERS`` maps each tag to a function rebuilding the value. Instances of a class that
can be imported again (enum members, dataclasses, pydantic models, named tuples) are written
with the class's import path (``encode_object``) and rebuilt by importing it. The codec
(``pyworkflow.serialization``) walks lists and dicts, owns the pickle fallback, and looks each
other type up here; the tags are stored in event logs, so one may be added but never renamed.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import json
import sys
import weakref
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from pyworkflow._codec_refusals import Failure as _Failure

if TYPE_CHECKING:
    from pyworkflow.serialization import Codec

__all__ = ["DEC", "TAG", "TYPE_DECODERS", "TYPE_ENCODERS", "encode_object"]

TAG = "__pw__"
"""The key that marks a tagged node; its value names the type."""
DEC = "cannot be decoded"
"""What a decoding failure says the value is."""


def _enc_set(codec: Codec, v: set[Any] | frozenset[Any]) -> Any:
    items = codec._enc_items(v, " (an item of the set)")
    # Sets iterate in hash order, which varies between processes: sort for stable logs.
    items.sort(key=lambda item: json.dumps(item, sort_keys=True))
    return {TAG: type(v).__name__, "items": items}


def encode_object(codec: Codec, v: Any) -> Any:
    """A class's instance as a tagged node naming the class by import path, else a pickle."""
    t = type(v)
    name = _class_path(t)
    if name is not None:
        if isinstance(v, Enum):
            return {TAG: "enum", "cls": name, "v": codec._enc_at(v.value, ".value")}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            fields = {
                f.name: codec._enc_at(getattr(v, f.name), f".{f.name}")
                for f in dataclasses.fields(v)
            }
            return {TAG: "dataclass", "cls": name, "fields": fields}
        if hasattr(t, "model_dump") and hasattr(t, "model_validate"):
            try:
                dumped = v.model_dump(mode="json")
            except Exception:  # not JSON-able as a model: pickle it below instead
                pass
            else:
                return {TAG: "pydantic", "cls": name, "v": codec._enc(dumped)}
        if isinstance(v, tuple) and hasattr(t, "_fields"):
            return {TAG: "namedtuple", "cls": name, "items": codec._enc_items(v)}
    return codec._enc_pickle(v)


# Weak keys: classes made at run time (in a loop, in tests) must not be kept alive by the cache.
_CLASS_PATHS: weakref.WeakKeyDictionary[type, str | None] = weakref.WeakKeyDictionary()


def _class_path(cls: type) -> str | None:
    """``"module:Qual.Name"`` if importing that gives back ``cls``, else None (pickle it)."""
    try:
        return _CLASS_PATHS[cls]
    except KeyError:
        pass
    found: Any = sys.modules.get(cls.__module__)
    for part in cls.__qualname__.split("."):
        found = getattr(found, part, None)
    path = f"{cls.__module__}:{cls.__qualname__}" if found is cls else None
    _CLASS_PATHS[cls] = path
    return path


def _import_class(node: dict[str, Any], check: Callable[[type], bool]) -> Any:
    path = node["cls"]
    module_name, _, qualname = str(path).partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise _Failure(str(path), f"cannot import {path!r}: {exc}", DEC) from exc
    if not isinstance(found, type) or not check(found):
        raise _Failure(str(path), f"{path!r} is not a {node[TAG]} class", DEC)
    return found


def _dec_datetime(_: Codec, node: dict[str, Any]) -> datetime:
    value = datetime.fromisoformat(node["v"])
    if "tz" in node:
        value = value.replace(tzinfo=ZoneInfo(node["tz"]))
    return value.replace(fold=1) if node.get("fold") else value


def _enc_datetime(_: Codec, v: datetime) -> Any:
    tz = v.tzinfo
    node: dict[str, Any]
    if isinstance(tz, ZoneInfo) and tz.key is not None:
        node = {TAG: "datetime", "v": v.replace(tzinfo=None).isoformat(), "tz": tz.key}
    else:
        node = {TAG: "datetime", "v": v.isoformat()}
    if v.fold:
        node["fold"] = 1
    return node


def _enc_time(codec: Codec, v: time) -> Any:
    if v.tzinfo is not None and not isinstance(v.tzinfo, timezone):
        return codec._enc_pickle(v)  # a zone's offset depends on the date: keep it whole
    return {TAG: "time", "v": v.isoformat(), **({"fold": 1} if v.fold else {})}


def _dec_dataclass(codec: Codec, node: dict[str, Any]) -> Any:
    cls = _import_class(node, dataclasses.is_dataclass)
    stored = node["fields"]
    # Like pickle, rebuild without calling __init__ / __post_init__: the fields are as they were.
    obj = cls.__new__(cls)
    for f in dataclasses.fields(cls):
        if f.name in stored:
            value = codec._dec(stored[f.name])
        elif f.default is not dataclasses.MISSING:
            value = f.default  # a field added since the value was encoded
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            reason = f"field {f.name!r} is missing and has no default"
            raise _Failure(str(node["cls"]), reason, DEC)
        object.__setattr__(obj, f.name, value)
    return obj


TYPE_ENCODERS: dict[type, Callable[[Codec, Any], Any]] = {
    tuple: lambda c, v: {TAG: "tuple", "items": c._enc_items(v)},
    set: _enc_set,
    frozenset: _enc_set,
    datetime: _enc_datetime,
    date: lambda _, v: {TAG: "date", "v": v.isoformat()},
    time: _enc_time,
    timedelta: lambda _, v: {TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]},
    UUID: lambda _, v: {TAG: "uuid", "v": str(v)},
    Decimal: lambda _, v: {TAG: "decimal", "v": str(v)},
    bytes: lambda _, v: {TAG: "bytes", "v": base64.b64encode(v).decode()},
    bytearray: lambda _, v: {TAG: "bytearray", "v": base64.b64encode(v).decode()},
}

TYPE_DECODERS: dict[str, Callable[[Codec, dict[str, Any]], Any]] = {
    "tuple": lambda c, n: tuple(c._dec_items(n["items"])),
    "set": lambda c, n: set(c._dec_items(n["items"])),
    "frozenset": lambda c, n: frozenset(c._dec_items(n["items"])),
    "dict": lambda c, n: {c._dec(k): c._dec(x) for k, x in n["items"]},
    "float": lambda _, n: float(n["v"]),
    "datetime": _dec_datetime,
    "date": lambda _, n: date.fromisoformat(n["v"]),
    "time": lambda _, n: time.fromisoformat(n["v"]).replace(fold=n.get("fold", 0)),
    "timedelta": lambda _, n: timedelta(*n["v"]),
    "uuid": lambda _, n: UUID(n["v"]),
    "decimal": lambda _, n: Decimal(n["v"]),
    "bytes": lambda _, n: base64.b64decode(n["v"], validate=True),
    "bytearray": lambda _, n: bytearray(base64.b64decode(n["v"], validate=True)),
    "enum": lambda c, n: _import_class(n, lambda t: issubclass(t, Enum))(c._dec(n["v"])),
    "dataclass": _dec_dataclass,
    "pydantic": lambda c, n: _import_class(
        n, lambda t: hasattr(t, "model_validate")
    ).model_validate(c._dec(n["v"])),
    "namedtuple": lambda c, n: _import_class(n, lambda t: hasattr(t, "_fields"))(
        *c._dec_items(n["items"])
    ),
}
