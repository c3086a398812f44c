"""The scheme table: each URL scheme builds its backend's storage, and only the table's do."""

from __future__ import annotations

import pytest

from pyworkflow.exceptions import ConfigurationError
from pyworkflow.storage import storage_from_url
from pyworkflow.storage._backends import BACKENDS, Backend

# What follows the scheme in a URL of each backend.
AFTER_SCHEME = {"memory": "://", "sqlite": ":///x.db", "postgres": "://user@host/db"}


@pytest.mark.parametrize(
    ("backend", "scheme"),
    [(backend, scheme) for backend in BACKENDS for scheme in backend.schemes],
    ids=lambda value: value.name if isinstance(value, Backend) else value,
)
def test_every_scheme_builds_its_backends_storage(backend: Backend, scheme: str) -> None:
    storage = storage_from_url(scheme + AFTER_SCHEME[backend.name])
    assert type(storage) is backend.storage_class()


def test_an_unknown_scheme_names_every_backend() -> None:
    with pytest.raises(ConfigurationError) as caught:
        storage_from_url("mysql://user:secret@host/db")
    assert str(caught.value) == (
        "storage 'mysql://user:***@host/db' is not a storage URL; use 'memory://', "
        "'sqlite:///path.db' or 'postgresql://user@host/database'"
    )
