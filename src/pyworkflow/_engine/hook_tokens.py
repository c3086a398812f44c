"""Hook tokens: unguessable, re-derivable on replay, stored only as a hash (DESIGN §5).

A token is an HMAC-SHA256 of the run id, the hook id and a random nonce. The nonce is logged in
HOOK_CREATED, so a replay derives the same token and hands it to ``on_created`` again (which may
call steps: the workflow issues the same commands on every replay). Storage keeps only the
token's SHA-256 (``hooks.token_hash``), so a listing of hooks shows no usable token.

The HMAC key is the configured ``secret_key``: with one, nothing in the database is enough to
derive a token. Without one the key is a fixed constant, so whoever reads the event log and
knows this scheme can derive tokens; that mode is for development and is logged as such once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets

__all__ = ["derive_token", "hash_token", "new_nonce", "pending_rows", "token_hint"]

_log = logging.getLogger("pyworkflow.hooks")
_UNSIGNED_KEY = b"pyworkflow-hook-token-without-secret-key"
_warned = False

pending_rows: set[str] = set()
"""Hashes of tokens this process handed to ``on_created`` whose hook row is not committed yet.

``on_created`` runs in the turn that creates the hook, before that turn's append: a token it
hands to code in this process can reach ``resume_hook`` before the row exists. ``resume_hook``
waits for a hash listed here instead of refusing it; the driver removes it after the append.
"""


def new_nonce() -> str:
    """128 random bits, logged with the hook."""
    return secrets.token_hex(16)


def derive_token(key: bytes | None, run_id: str, hook_id: str, nonce: str) -> str:
    """The hook's bearer token: ``hk_`` and 43 url-safe characters."""
    global _warned
    if key is None and not _warned:
        _warned = True
        _log.warning(
            "hook tokens are derived without a secret_key: configure one (PYWORKFLOW_SECRET_KEY) "
            "so that a copy of the database is not enough to forge a hook token"
        )
    message = f"{run_id}\x00{hook_id}\x00{nonce}".encode()
    digest = hmac.new(key or _UNSIGNED_KEY, message, hashlib.sha256).digest()
    return "hk_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hash_token(token: str) -> str:
    """What storage keeps of a token: its hex SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_hint(token: str) -> str:
    """The first characters of a token, enough to tell tokens apart in an error message."""
    return token[:10]
