"""PostgreSQL settings: how to reach the database, read from the URL and its options.

The storage's URL carries asyncpg's connection options and ours (``pool_size``,
``statement_timeout``, ``create``, ``auto_upgrade``, ``schema``); arguments given to the storage
win over the URL's. :class:`PgSettings` also derives what follows from them: the LISTEN/NOTIFY
channel of the schema, the session settings sent at connect, the message for a server that
cannot be reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import ConfigurationError, InvalidDurationError, StorageUnavailableError
from pyworkflow.storage._backends import backend_named
from pyworkflow.storage.postgres._one_trip import NOTIFY_CHANNEL

__all__ = ["SCHEMES", "PgSettings", "parse_url", "quoted"]

SCHEMES = backend_named("postgres").schemes
"""URL schemes that name a PostgreSQL storage (the scheme table's)."""

_OUR_OPTIONS = ("pool_size", "statement_timeout", "create", "auto_upgrade", "schema")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass
class PgSettings:
    """How to reach the database and what to do when opening it."""

    dsn: str
    masked_url: str
    database: str
    host: str
    pool_size: int = 10
    statement_timeout: float | None = None
    create: bool = True
    auto_upgrade: bool = True
    schema: str | None = None
    connect_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel: one per schema, so two storages do not wake each other."""
        return NOTIFY_CHANNEL if self.schema is None else f"{NOTIFY_CHANNEL}.{self.schema}"

    @property
    def server_settings(self) -> dict[str, str]:
        """Session settings sent at connect."""
        settings = {"application_name": "pyworkflow"}
        if self.schema is not None:
            settings["search_path"] = quoted(self.schema)
        if self.statement_timeout is not None:
            settings["statement_timeout"] = str(round(self.statement_timeout * 1000))
        return settings

    def unreachable(self, exc: BaseException) -> StorageUnavailableError:
        """The error for a server that cannot be reached, saying what to check."""
        return StorageUnavailableError(
            self.masked_url,
            f"{type(exc).__name__}: {exc}. Check that PostgreSQL is running and accepts "
            f"connections at {self.host}, and that the user and password may connect to "
            f"database {self.database!r}",
        )


def quoted(identifier: str) -> str:
    """``identifier`` as a quoted SQL identifier (a schema or database name)."""
    return '"' + identifier.replace('"', '""') + '"'


def _flag(url: str, name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigurationError(f"storage {url!r}: {name}={value!r} is not true or false")


def parse_url(
    url: str,
    *,
    pool_size: int | None = None,
    statement_timeout: float | None = None,
    create: bool | None = None,
    auto_upgrade: bool | None = None,
    schema: str | None = None,
) -> PgSettings:
    """Read a PostgreSQL URL and its options; arguments given here win over the URL's.

    Raises:
        ConfigurationError: not a PostgreSQL URL, or an option that cannot be used.
    """
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"{url!r} is not a PostgreSQL URL: {exc}") from exc
    masked = parsed.render_as_string(hide_password=True)
    if parsed.drivername not in SCHEMES:
        accepted = ", ".join(f"'{s}://'" for s in SCHEMES)
        raise ConfigurationError(f"storage {masked!r}: a PostgreSQL URL starts with {accepted}")
    options = {k: v for k, v in parsed.query.items() if k in _OUR_OPTIONS}
    text = {k: v if isinstance(v, str) else v[-1] for k, v in options.items()}
    if pool_size is None and "pool_size" in text:
        if not text["pool_size"].isdigit():
            raise ConfigurationError(f"storage {masked!r}: pool_size must be a whole number")
        pool_size = int(text["pool_size"])
    if statement_timeout is None and "statement_timeout" in text:
        try:
            statement_timeout = parse_duration(text["statement_timeout"])
        except InvalidDurationError as exc:
            raise ConfigurationError(f"storage {masked!r}: statement_timeout: {exc}") from exc
    if create is None and "create" in text:
        create = _flag(masked, "create", text["create"])
    if auto_upgrade is None and "auto_upgrade" in text:
        auto_upgrade = _flag(masked, "auto_upgrade", text["auto_upgrade"])
    if schema is None:
        schema = text.get("schema") or None
    if pool_size is not None and pool_size < 1:
        raise ConfigurationError(f"storage {masked!r}: pool_size={pool_size!r} must be >= 1")
    if statement_timeout is not None and not statement_timeout > 0:
        raise ConfigurationError(f"storage {masked!r}: statement_timeout must be positive")
    plain = parsed.set(drivername="postgresql").difference_update_query(_OUR_OPTIONS)
    return PgSettings(
        dsn=plain.render_as_string(hide_password=False),
        masked_url=masked,
        database=parsed.database or parsed.username or "postgres",
        host=f"{parsed.host or 'localhost'}:{parsed.port or 5432}",
        pool_size=10 if pool_size is None else pool_size,
        statement_timeout=statement_timeout,
        create=True if create is None else create,
        auto_upgrade=True if auto_upgrade is None else auto_upgrade,
        schema=schema,
    )
