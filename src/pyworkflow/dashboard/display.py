"""How stored values read in a page: decoded with a safe codec, pretty JSON, cut when large.

The dashboard decodes with the process's codec only when a secret key is configured: a pickled
value is then checked against its HMAC before it is unpickled. Without a key it decodes with
pickle refused, so a pickled value shows as "cannot decode here" and the bytes of whoever wrote
the database never run in the dashboard's process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pyworkflow.inspect import Undecodable, jsonable
from pyworkflow.serialization import Codec

__all__ = ["PREVIEW_LIMIT", "VALUE_LIMIT", "Shown", "preview", "reading_codec", "shown"]

VALUE_LIMIT = 4000
"""Characters of a value a page shows; the rest is behind a link to the raw value."""

PREVIEW_LIMIT = 120
"""Characters of a value a table cell shows (a signal's payload, a stream step's result)."""


def reading_codec(codec: Codec) -> Codec:
    """``codec`` when it checks pickles against a secret key; else one that refuses pickle."""
    return codec if codec.signing_key is not None else Codec(allow_pickle=False)


@dataclass(frozen=True, slots=True)
class Shown:
    """A value as a page shows it.

    Attributes:
        text: pretty JSON, at most ``VALUE_LIMIT`` characters.
        size: characters of the whole text.
        truncated: True when ``text`` is cut (the page links to the raw value).
        undecodable: why the value cannot be decoded here, or None.
    """

    text: str
    size: int
    truncated: bool
    undecodable: str | None


def shown(value: Any, limit: int = VALUE_LIMIT) -> Shown:
    """The page's form of a decoded value (an ``Undecodable`` shows its stored form)."""
    reason = value.reason if isinstance(value, Undecodable) else None
    text = json.dumps(jsonable(value), indent=2, ensure_ascii=False, default=repr)
    return Shown(text[:limit], len(text), len(text) > limit, reason)


def preview(value: Any, limit: int = PREVIEW_LIMIT) -> str:
    """A value as one line of compact JSON for a table cell, cut to ``limit`` with an ellipsis."""
    text = json.dumps(jsonable(value), ensure_ascii=False, default=repr, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
