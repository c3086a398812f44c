"""The JSON text that storage keeps for a value: compact, ASCII, written by one encoder.

Every JSON column (arguments, results, errors, event payloads) and every batch document sent to
PostgreSQL goes through :func:`encode`, so the text a value is stored as cannot differ between
backends or between a write made alone and one made in a batch; the codec measures a value's
size with it (``max_payload_size``), so what it measures is what storage writes.

Why not ``json.dumps``: ``JSONEncoder.encode`` builds a C encoder, and a dict for its cycle
check, at every call; every event of every step comes through here (~3 us a payload that way,
~1.4 us this way). The values are the codec's trees and the engine's records, which hold no
cycles, so the check is left out.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

__all__ = ["encode"]


def _compact_encoder() -> Callable[[Any], str]:
    make = getattr(json.encoder, "c_make_encoder", None)  # CPython's C accelerator, unexported
    if make is None:  # an interpreter without the C accelerator
        return json.JSONEncoder(separators=(",", ":")).encode
    encoder = make(
        None,  # no cycle check
        json.JSONEncoder().default,  # raises TypeError naming the type, as json.dumps does
        json.encoder.encode_basestring_ascii,
        None,  # no indent
        ":",
        ",",
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan, as JSONEncoder's default
    )

    def encode(value: Any) -> str:
        return "".join(encoder(value, 0))

    return encode


encode: Callable[[Any], str] = _compact_encoder()
"""A JSON value as the text stored for it, e.g. ``encode({"a": [1, 2.5]}) == '{"a":[1,2.5]}'``."""
