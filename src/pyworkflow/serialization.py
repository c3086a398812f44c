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

This module holds the codec: the walk through lists and dicts, the pickle fallback and its
signature. The tagged node of each other type, and the import of a class by its path, are
``_codec_types``'s.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Callable, Iterable
from typing import Any

import cloudpickle

from pyworkflow._codec_refusals import NO_PICKLE_HINT as _NO_PICKLE_HINT
from pyworkflow._codec_refusals import PLAIN, live_object
from pyworkflow._codec_refusals import Failure as _Failure
from pyworkflow._codec_refusals import type_name as _type_name
from pyworkflow._codec_types import DEC, TAG, TYPE_DECODERS, TYPE_ENCODERS, encode_object
from pyworkflow._payload_size import DEFAULT_MAX_PAYLOAD_SIZE, check_size, checked_limit
from pyworkflow.exceptions import ConfigurationError, SerializationError

__all__ = ["DEFAULT_MAX_PAYLOAD_SIZE", "Codec"]


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
            raise _Failure(_type_name(tree), "nested too deeply", DEC).error("value") from None

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
        encoder = TYPE_ENCODERS.get(t)
        if encoder is not None:
            return encoder(self, v)
        return encode_object(self, v)

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
            raise _Failure("dict", f"unknown tag {TAG}={tag!r}", DEC)
        try:
            return decoder(self, node)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _Failure(str(tag), f"malformed payload: {exc!r}", DEC) from exc

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
            raise _Failure(type_name, "refusing to unpickle: " + _NO_PICKLE_HINT, DEC)
        data = base64.b64decode(node["data"], validate=True)
        if self._key is not None:
            good = hmac.new(self._key, data, hashlib.sha256).hexdigest()
            sig = node.get("sig")
            if not isinstance(sig, str) or not hmac.compare_digest(sig, good):
                reason = "signature is missing or wrong (tampered with, or another secret_key)"
                raise _Failure(type_name, f"refusing to unpickle: {reason}", DEC)
        try:
            return cloudpickle.loads(data)
        except Exception as exc:
            raise _Failure(type_name, f"unpickling failed: {exc!r}", DEC) from exc


# The types of ``_codec_types``, and the fallback the codec owns.
_DECODERS: dict[str, Callable[[Codec, dict[str, Any]], Any]] = {
    **TYPE_DECODERS,
    "pickle": Codec._dec_pickle,
}
