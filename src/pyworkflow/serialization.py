"""One codec for step arguments, results and hook payloads (DESIGN §5).

A value becomes a JSON-compatible tree. Plain JSON values (``str``, ``int``, finite ``float``,
``bool``, ``None``, ``list``, ``dict`` with ``str`` keys) keep their shape, so logs stay readable
and the common case is fast. Everything else is a tagged dict ``{"__pw__": TAG, ...}``: tuples,
sets, datetimes (aware or naive, as they were), dates, times, timedeltas, UUIDs, Decimals,
bytes, NaN and infinities, dicts with other keys, enum members, dataclasses, pydantic models and
named tuples. Classes are stored by import path and imported again to decode.

Live objects of this process (open files, sockets, locks, generators, threads, connections) are
refused, each saying what to hand over instead (``_codec_refusals``). Anything else is pickled
with cloudpickle under the tag ``"pickle"``. Unpickling runs code: with a ``secret_key`` every
pickle is HMAC-SHA256 signed and one with a missing or wrong signature is refused;
``allow_pickle=False`` refuses pickle both ways.

A value whose JSON text would be longer than ``max_payload_size`` (64 MiB by default) is refused
with ``PayloadTooLargeError`` (``_payload_size``).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import importlib
import json
import math
import sys
import weakref
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import cloudpickle

from pyworkflow._codec_refusals import NO_PICKLE_HINT as _NO_PICKLE_HINT
from pyworkflow._codec_refusals import PLAIN, live_object
from pyworkflow._codec_refusals import Failure as _Failure
from pyworkflow._codec_refusals import type_name as _type_name
from pyworkflow._payload_size import DEFAULT_MAX_PAYLOAD_SIZE, check_size, checked_limit
from pyworkflow.exceptions import ConfigurationError, SerializationError

__all__ = ["DEFAULT_MAX_PAYLOAD_SIZE", "Codec"]

TAG = "__pw__"
_DEC = "cannot be decoded"


class Codec:
    """Encodes values to JSON-compatible trees and back.

    Args:
        secret_key: when set, pickled payloads are signed with HMAC-SHA256 and checked on decode.
        allow_pickle: False refuses values that need pickle, both when encoding and decoding.
        max_payload_size: the most characters of JSON text one encoded value may take; None
            for no limit (the database's own then applies, 1 GB on SQLite and PostgreSQL).

    Example:
        >>> codec = Codec(secret_key="s3cret")
        >>> codec.loads(codec.dumps({"when": date(2024, 1, 2)}))
        {'when': datetime.date(2024, 1, 2)}
    """

    __slots__ = ("_allow_pickle", "_key", "_limit")

    def __init__(
        self,
        *,
        secret_key: str | bytes | None = None,
        allow_pickle: bool = True,
        max_payload_size: int | None = DEFAULT_MAX_PAYLOAD_SIZE,
    ) -> None:
        if secret_key is not None and not secret_key:
            raise ConfigurationError("secret_key is empty; pass a long random string or None")
        self._key = secret_key.encode() if isinstance(secret_key, str) else secret_key
        self._allow_pickle = allow_pickle
        self._limit = checked_limit(max_payload_size)

    @property
    def signing_key(self) -> bytes | None:
        """The configured secret key (also the key hook tokens are derived with), or None."""
        return self._key

    def encode(self, value: object, *, path: str = "value", result: bool = False) -> Any:
        """Encode ``value`` to a tree that ``json.dumps`` accepts (with ``allow_nan=False``).

        Args:
            value: anything; see the module docstring for what stays JSON.
            path: how error messages name the value, e.g. ``"argument 'items'"``.
            result: the value is a step's or a workflow's result: a refusal says what to
                return instead, not what to pass.

        Returns:
            A tree of dict, list, str, int, float, bool and None.

        Raises:
            SerializationError: naming the path inside ``value`` (``"argument 'items'[2]"``) and
                the type, when a part is a live object of this process (a file, a lock ...),
                cannot be pickled, or pickle is disabled.
            PayloadTooLargeError: its JSON text would be longer than ``max_payload_size``.
        """
        try:
            tree = self._enc(value)
        except _Failure as failure:
            raise failure.error(path, result=result) from failure.__cause__
        except RecursionError:
            deep = _Failure(_type_name(value), "it is nested too deeply or contains itself")
            raise deep.error(path) from None
        check_size(tree, value, path, self._limit)
        return tree

    def decode(self, tree: Any) -> Any:
        """Rebuild the value that :meth:`encode` turned into ``tree``.

        Args:
            tree: a tree from :meth:`encode` (possibly after a JSON round trip).

        Returns:
            A value equal to the encoded one, of the same type.

        Raises:
            SerializationError: for a malformed tree, a class that can no longer be imported, a
                pickle whose signature is missing or wrong, or any pickle when it is disabled.
        """
        try:
            return self._dec(tree)
        except _Failure as failure:
            raise failure.error("value") from failure.__cause__
        except RecursionError:
            raise _Failure(_type_name(tree), "nested too deeply", _DEC).error("value") from None

    def dumps(self, value: object, *, path: str = "value") -> str:
        """Encode ``value`` as compact JSON text; see :meth:`encode`."""
        return json.dumps(self.encode(value, path=path), separators=(",", ":"), allow_nan=False)

    def loads(self, text: str) -> Any:
        """Decode JSON text made by :meth:`dumps`; see :meth:`decode`."""
        try:
            tree = json.loads(text)
        except ValueError as exc:
            raise SerializationError(f"payload is not valid JSON: {exc}") from exc
        return self.decode(tree)

    # --- encoding ------------------------------------------------------------------------------

    def _enc(self, v: Any) -> Any:
        t = type(v)
        # Exact types first: most payloads are plain JSON.
        if t is str or t is int or t is bool or v is None:
            return v
        if t is dict:
            return self._enc_dict(v)
        if t is list:
            return self._enc_items(v)
        if t is float:
            return v if math.isfinite(v) else {TAG: "float", "v": repr(v)}
        encoder = _ENCODERS.get(t)
        if encoder is not None:
            return encoder(self, v)
        return self._enc_object(v)

    def _enc_dict(self, d: dict[Any, Any]) -> Any:
        out: dict[str, Any] = {}
        k: Any = None
        try:
            for k, x in d.items():
                if type(k) is not str or k == TAG:
                    break
                out[k] = self._enc(x)
            else:
                return out
        except _Failure as failure:
            failure.keys.append(f"[{k!r}]")
            raise
        return {TAG: "dict", "items": self._enc_pairs(d)}

    def _enc_pairs(self, d: dict[Any, Any]) -> list[list[Any]]:
        # Rare (non-str keys), so building each key's label up front is affordable.
        return [[self._enc_at(k, " (a key)"), self._enc_at(x, f"[{k!r}]")] for k, x in d.items()]

    def _enc_items(self, items: Iterable[Any], label: str | None = None) -> list[Any]:
        out: list[Any] = []
        try:
            for x in items:
                out.append(self._enc(x))
        except _Failure as failure:
            failure.keys.append(label or f"[{len(out)}]")
            raise
        return out

    def _enc_set(self, v: set[Any] | frozenset[Any]) -> Any:
        items = self._enc_items(v, " (an item of the set)")
        # Sets iterate in hash order, which varies between processes: sort for stable logs.
        items.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return {TAG: type(v).__name__, "items": items}

    def _enc_object(self, v: Any) -> Any:
        t = type(v)
        name = _class_path(t)
        if name is not None:
            if isinstance(v, Enum):
                return {TAG: "enum", "cls": name, "v": self._enc_at(v.value, ".value")}
            if dataclasses.is_dataclass(v) and not isinstance(v, type):
                fields = {
                    f.name: self._enc_at(getattr(v, f.name), f".{f.name}")
                    for f in dataclasses.fields(v)
                }
                return {TAG: "dataclass", "cls": name, "fields": fields}
            if hasattr(t, "model_dump") and hasattr(t, "model_validate"):
                try:
                    dumped = v.model_dump(mode="json")
                except Exception:  # not JSON-able as a model: pickle it below instead
                    pass
                else:
                    return {TAG: "pydantic", "cls": name, "v": self._enc(dumped)}
            if isinstance(v, tuple) and hasattr(t, "_fields"):
                return {TAG: "namedtuple", "cls": name, "items": self._enc_items(v)}
        return self._enc_pickle(v)

    def _enc_at(self, v: Any, key: str) -> Any:
        try:
            return self._enc(v)
        except _Failure as failure:
            failure.keys.append(key)
            raise

    def _enc_pickle(self, v: Any) -> Any:
        refused = live_object(v)  # before pickle, which would copy some of them wrongly
        if refused is not None:
            raise refused
        if not self._allow_pickle:
            raise _Failure(_type_name(v), _NO_PICKLE_HINT)
        try:
            data = cloudpickle.dumps(v)
        except Exception as exc:
            raise _Failure(_type_name(v), str(exc), advice=PLAIN) from exc
        node = {TAG: "pickle", "type": _type_name(v), "data": base64.b64encode(data).decode()}
        if self._key is not None:
            node["sig"] = hmac.new(self._key, data, hashlib.sha256).hexdigest()
        return node

    # --- decoding ------------------------------------------------------------------------------

    def _dec(self, node: Any) -> Any:
        t = type(node)
        if t is list:
            return self._dec_items(node)
        if t is not dict:
            return node
        tag = node.get(TAG)
        if tag is None:
            out = {}
            k = None
            try:
                for k, x in node.items():
                    out[k] = self._dec(x)
            except _Failure as failure:
                failure.keys.append(f"[{k!r}]")
                raise
            return out
        decoder = _DECODERS.get(tag) if type(tag) is str else None
        if decoder is None:
            raise _Failure("dict", f"unknown tag {TAG}={tag!r}", _DEC)
        try:
            return decoder(self, node)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _Failure(str(tag), f"malformed payload: {exc!r}", _DEC) from exc

    def _dec_items(self, items: list[Any]) -> list[Any]:
        out: list[Any] = []
        try:
            for x in items:
                out.append(self._dec(x))
        except _Failure as failure:
            failure.keys.append(f"[{len(out)}]")
            raise
        return out

    def _dec_pickle(self, node: dict[str, Any]) -> Any:
        type_name = str(node.get("type", "pickled object"))
        if not self._allow_pickle:
            raise _Failure(type_name, "refusing to unpickle: " + _NO_PICKLE_HINT, _DEC)
        data = base64.b64decode(node["data"], validate=True)
        if self._key is not None:
            good = hmac.new(self._key, data, hashlib.sha256).hexdigest()
            sig = node.get("sig")
            if not isinstance(sig, str) or not hmac.compare_digest(sig, good):
                reason = "signature is missing or wrong (tampered with, or another secret_key)"
                raise _Failure(type_name, f"refusing to unpickle: {reason}", _DEC)
        try:
            return cloudpickle.loads(data)
        except Exception as exc:
            raise _Failure(type_name, f"unpickling failed: {exc!r}", _DEC) from exc


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
        raise _Failure(str(path), f"cannot import {path!r}: {exc}", _DEC) from exc
    if not isinstance(found, type) or not check(found):
        raise _Failure(str(path), f"{path!r} is not a {node[TAG]} class", _DEC)
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
            raise _Failure(str(node["cls"]), reason, _DEC)
        object.__setattr__(obj, f.name, value)
    return obj


_ENCODERS: dict[type, Callable[[Codec, Any], Any]] = {
    tuple: lambda c, v: {TAG: "tuple", "items": c._enc_items(v)},
    set: Codec._enc_set,
    frozenset: Codec._enc_set,
    datetime: _enc_datetime,
    date: lambda _, v: {TAG: "date", "v": v.isoformat()},
    time: _enc_time,
    timedelta: lambda _, v: {TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]},
    UUID: lambda _, v: {TAG: "uuid", "v": str(v)},
    Decimal: lambda _, v: {TAG: "decimal", "v": str(v)},
    bytes: lambda _, v: {TAG: "bytes", "v": base64.b64encode(v).decode()},
    bytearray: lambda _, v: {TAG: "bytearray", "v": base64.b64encode(v).decode()},
}

_DECODERS: dict[str, Callable[[Codec, dict[str, Any]], Any]] = {
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
    "pickle": Codec._dec_pickle,
}
