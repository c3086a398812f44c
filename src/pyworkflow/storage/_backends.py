"""The storage backends: which URL schemes each one serves, and the package that holds it.

``storage_from_url`` reads this table, and so do the test fixtures (each runs once per backend
listed here). A backend is a package under ``storage/`` whose storage class has a ``from_url``
class method; adding one is that package and one line in :data:`BACKENDS`. The package is
imported on first use only, as its driver may be an optional dependency (asyncpg).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from pyworkflow.exceptions import ConfigurationError

if TYPE_CHECKING:
    from pyworkflow.storage.protocol import Storage

__all__ = ["BACKENDS", "Backend", "backend_for", "backend_named", "masked"]


class _BuiltFromUrl(Protocol):
    """A storage class, as the table uses it: it builds its storages from URLs."""

    @classmethod
    def from_url(cls, url: str) -> Storage: ...


@dataclass(frozen=True)
class Backend:
    """One storage backend.

    Attributes:
        name: how tests and messages name it (``"sqlite"``).
        title: how a sentence names it (``"SQLite"``).
        schemes: the URL schemes it serves, the first one canonical.
        example: a URL of it, for the message that lists what is accepted.
        package: the package whose face exports the storage class.
        class_name: the storage class; its ``from_url(url)`` builds an unopened storage.
        extra: the pip extra that installs its driver, when that is optional.
        driver: the driver the extra installs, for the message when it is missing.
    """

    name: str
    title: str
    schemes: tuple[str, ...]
    example: str
    package: str
    class_name: str
    extra: str | None = None
    driver: str | None = None

    def storage_class(self) -> type[Storage]:
        """The backend's storage class, importing its package now.

        Raises:
            ConfigurationError: its driver is an optional dependency that is not installed.
        """
        try:
            module = importlib.import_module(self.package)
        except ImportError as exc:
            if self.extra is None:
                raise
            raise ConfigurationError(
                f"{self.title} storage needs {self.driver} ({exc}); install it with "
                f"pip install 'pyworkflow-durable[{self.extra}]'"
            ) from exc
        storage_class: type[Storage] = getattr(module, self.class_name)
        return storage_class

    def from_url(self, url: str) -> Storage:
        """An unopened storage of this backend for ``url`` (its class reads the URL's options).

        Raises:
            ConfigurationError: the URL or one of its options does not fit this backend, or
                the backend's driver is not installed.
        """
        return cast("type[_BuiltFromUrl]", self.storage_class()).from_url(url)


BACKENDS: tuple[Backend, ...] = (
    Backend("memory", "Memory", ("memory",), "memory://",
            "pyworkflow.storage.memory", "MemoryStorage"),
    Backend("sqlite", "SQLite", ("sqlite", "sqlite+pysqlite"), "sqlite:///path.db",
            "pyworkflow.storage.sqlite", "SQLiteStorage"),
    Backend("postgres", "PostgreSQL", ("postgresql", "postgresql+asyncpg", "postgres"),
            "postgresql://user@host/database", "pyworkflow.storage.postgres",
            "PostgresStorage", extra="postgres", driver="asyncpg"),
)  # fmt: skip
"""Every backend, one line each."""

_BY_SCHEME = {scheme: backend for backend in BACKENDS for scheme in backend.schemes}


def masked(url: str) -> str:
    """The URL with any password replaced by ``***``, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def backend_for(url: str) -> Backend:
    """The backend that serves ``url``'s scheme.

    Raises:
        ConfigurationError: no backend serves it; the message lists what is accepted.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    backend = _BY_SCHEME.get(scheme)
    if backend is None:
        examples = [f"'{b.example}'" for b in BACKENDS]
        accepted = f"{', '.join(examples[:-1])} or {examples[-1]}"
        raise ConfigurationError(f"storage {masked(url)!r} is not a storage URL; use {accepted}")
    return backend


def backend_named(name: str) -> Backend:
    """The backend called ``name`` in :data:`BACKENDS` (a KeyError names a missing one)."""
    for backend in BACKENDS:
        if backend.name == name:
            return backend
    raise KeyError(name)
