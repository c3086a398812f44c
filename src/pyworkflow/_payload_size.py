"""How long an encoded value may be: the codec's ``max_payload_size``.

A value whose JSON text would be longer than the limit (64 MiB by default) is refused with
``PayloadTooLargeError`` before anything is written. Without it a step returning a value its
database cannot store (1 GB on SQLite and PostgreSQL) failed its write at every attempt and ran
again forever. The size is that of the text storage writes (``_json_text``), so what is
measured is what is stored.
"""

from __future__ import annotations

import os
from typing import Any

from pyworkflow._codec_refusals import type_name
from pyworkflow._json_text import encode as json_text
from pyworkflow.exceptions import ConfigurationError, PayloadTooLargeError

__all__ = ["DEFAULT_MAX_PAYLOAD_SIZE", "check_size", "checked_limit", "limit_from_environment"]

DEFAULT_MAX_PAYLOAD_SIZE = 64 * 1024 * 1024
"""Characters of JSON text a value may take encoded (64 MiB): ``Codec(max_payload_size=...)``,
``PYWORKFLOW_MAX_PAYLOAD_SIZE``."""

# Trees too small to measure: a scalar's text is short, whatever its value.
_SCALARS = (bool, int, float, type(None))
# Storage's JSON text writes a character of a string as up to six (``\\u00e9``).
_WIDEST_ESCAPE = 6


def checked_limit(limit: int | None) -> int | None:
    """``limit`` if it is one (a positive int, or None for none).

    Raises:
        ConfigurationError: anything else, naming it.
    """
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ConfigurationError(
            f"max_payload_size={limit!r} must be a positive number of characters, "
            "or None for no limit"
        )
    return limit


def limit_from_environment() -> int | None:
    """``PYWORKFLOW_MAX_PAYLOAD_SIZE``: characters, or ``none``; default 64 MiB.

    Raises:
        ConfigurationError: it holds anything else, naming the variable.
    """
    given = os.environ.get("PYWORKFLOW_MAX_PAYLOAD_SIZE", "").strip()
    if not given:
        return DEFAULT_MAX_PAYLOAD_SIZE
    if given.lower() == "none":
        return None
    if not given.isdigit() or int(given) < 1:
        raise ConfigurationError(
            f"PYWORKFLOW_MAX_PAYLOAD_SIZE={given!r} is not a positive number of characters "
            "(or 'none' for no limit)"
        )
    return int(given)


def check_size(tree: Any, value: object, path: str, limit: int | None) -> None:
    """Refuse ``tree`` (``value`` encoded) if its JSON text is longer than ``limit``.

    Raises:
        PayloadTooLargeError: naming ``path``, the value's type, its size and the limit.
    """
    if limit is None or isinstance(tree, _SCALARS):
        return
    if isinstance(tree, str) and len(tree) * _WIDEST_ESCAPE + 2 <= limit:
        return
    size = len(json_text(tree))  # C-fast: a small tree costs about a microsecond
    if size > limit:
        raise PayloadTooLargeError(path, type_name(value), size, limit)
