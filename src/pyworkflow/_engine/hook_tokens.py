"""Hook tokens: unguessable, re-derivable on replay, stored only as a hash (DESIGN §5).

A token is an HMAC-SHA256 of the run id, the hook id and a random nonce. The nonce is logged in
HOOK_CREATED, so a replay derives the same token and hands it to ``on_created`` again (which may
call steps: the workflow issues the same commands on every replay). Storage keeps only the
token's SHA-256 (``hooks.token_hash``), so a listing of hooks shows no usable token.

The HMAC key never lives in the database, so a copy of the database cannot produce a token:
it is the configured ``secret_key``, else this machine's installation key, made on first use
in ``$PYWORKFLOW_HOME/hook-token.key`` (default ``~/.pyworkflow``, readable by its owner
only). Workers on several machines share one database and must then share the key: configure
``secret_key`` (``PYWORKFLOW_SECRET_KEY``) on all of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
from pathlib import Path

from pyworkflow.exceptions import ConfigurationError

__all__ = [
    "derive_token",
    "hash_token",
    "installation_key",
    "new_nonce",
    "pending_rows",
    "token_hint",
]

_log = logging.getLogger("pyworkflow.hooks")
_KEY_FILE = "hook-token.key"
_KEY_BYTES = 32
_installation_key: bytes | None = None

pending_rows: set[str] = set()
"""Hashes of tokens this process handed to ``on_created`` whose hook row is not committed yet.

``on_created`` runs in the turn that creates the hook, before that turn's append: a token it
hands to code in this process can reach ``resume_hook`` before the row exists. ``resume_hook``
waits for a hash listed here instead of refusing it; the driver removes it after the append.
"""


def installation_key() -> bytes:
    """This machine's hook key: read from, or made once in, ``$PYWORKFLOW_HOME``.

    Raises:
        ConfigurationError: the key file cannot be read or created (name the fix).
    """
    global _installation_key
    if _installation_key is not None:
        return _installation_key
    home = Path(os.environ.get("PYWORKFLOW_HOME") or Path.home() / ".pyworkflow")
    path = home / _KEY_FILE
    try:
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            _make_key_file(path)
        key = _read_key(path)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot read or create the hook token key {str(path)!r} ({exc}); configure "
            "secret_key (PYWORKFLOW_SECRET_KEY) or set PYWORKFLOW_HOME to a writable directory"
        ) from exc
    _installation_key = key
    return key


def new_nonce() -> str:
    """128 random bits, logged with the hook."""
    return secrets.token_hex(16)


def _read_key(path: Path) -> bytes:
    """The key in ``path``, waiting a moment for a process that is still writing it."""
    for _ in range(100):
        key = bytes.fromhex(path.read_text().strip())
        if len(key) == _KEY_BYTES:
            return key
        time.sleep(0.01)
    raise ValueError(f"the file does not hold a {_KEY_BYTES}-byte hex key")


def _make_key_file(path: Path) -> None:
    """Write a fresh key, readable by its owner only, unless another process just did."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(_KEY_BYTES))
    _log.info("made this machine's hook token key in %s", path)


def derive_token(key: bytes | None, run_id: str, hook_id: str, nonce: str) -> str:
    """The hook's bearer token: ``hk_`` and 43 url-safe characters.

    ``key``: the configured secret key, or None for this machine's installation key.
    """
    message = f"{run_id}\x00{hook_id}\x00{nonce}".encode()
    digest = hmac.new(key or installation_key(), message, hashlib.sha256).digest()
    return "hk_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hash_token(token: str) -> str:
    """What storage keeps of a token: its hex SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_hint(token: str) -> str:
    """The first characters of a token, enough to tell tokens apart in an error message."""
    return token[:10]
