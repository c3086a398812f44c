"""Stored workflow values as a reader sees them: decoded, or kept encoded when they cannot be.

Arguments, results and payloads are stored encoded (``pyworkflow.serialization``). A reader
decodes them with the codec of its process; one it cannot decode (its class is not importable
here, a pickle refused) becomes an :class:`Undecodable` holding the stored form and the reason,
so that one odd value never fails a whole page.

``jsonable`` turns a decoded value into plain JSON types: datetimes, dates and times as ISO
strings, timedeltas as float seconds, UUIDs and Decimals as strings, bytes as base64, enums as
their values, dataclasses and pydantic models as objects, sets and tuples as lists, an
``Undecodable`` as its stored form, anything else as its ``repr``.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from pyworkflow.durations import to_datetime
from pyworkflow.exceptions import SerializationError
from pyworkflow.serialization import Codec

__all__ = ["Undecodable", "decode", "iso", "jsonable"]


@dataclasses.dataclass(frozen=True, slots=True)
class Undecodable:
    """A stored value this process cannot decode: kept encoded, with the reason.

    Attributes:
        encoded: the value as stored (a JSON tree).
        reason: why it cannot be decoded here, e.g. ``"cannot import 'app.models:Order'"``.
    """

    encoded: Any
    reason: str


def decode(codec: Codec, tree: Any) -> Any:
    """``codec.decode(tree)``, or an ``Undecodable`` instead of failing the whole page.

    Example:
        >>> decode(Codec(), {"__pw__": "dataclass", "cls": "gone:Gone", "fields": {}})
        Undecodable(encoded={...}, reason="...cannot import 'gone:Gone'...")
    """
    try:
        return codec.decode(tree)
    except SerializationError as exc:
        return Undecodable(tree, str(exc))


def iso(moment: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string; None stays None.

    A time past year 9999 (stored before durations were bounded) reads as the last one there is.

    Example:
        >>> iso(0.0)
        '1970-01-01T00:00:00+00:00'
    """
    return None if moment is None else to_datetime(moment).isoformat()


def jsonable(value: Any) -> Any:
    """A decoded value as plain JSON types (see the module docstring for the conversions).

    Example:
        >>> jsonable({"when": date(2024, 5, 1), "ids": (1, 2)})
        {'when': '2024-05-01', 'ids': [1, 2]}
    """
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, Undecodable):
        return value.encoded
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):  # a pydantic model
        return jsonable(model_dump(mode="json"))
    return repr(value)
