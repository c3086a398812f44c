"""Lease and recovery settings from the environment, for ``celery worker`` (no flags of ours).

``celery -A pyworkflow.celery worker`` has no ``--lease-seconds``: its processes read
``PYWORKFLOW_LEASE_SECONDS`` and ``PYWORKFLOW_MAX_RECOVERIES``. An explicit ``configure``
argument wins over the environment, and a bad value is a ``ConfigurationError`` naming it.
"""

from __future__ import annotations

import pytest

import pyworkflow
from pyworkflow import ConfigurationError, config


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "_settings", config._Settings())
    monkeypatch.delenv("PYWORKFLOW_LEASE_SECONDS", raising=False)
    monkeypatch.delenv("PYWORKFLOW_MAX_RECOVERIES", raising=False)


def test_defaults_without_the_variables() -> None:
    settings = config.engine_settings()
    assert (settings.lease_seconds, settings.max_recoveries) == (15.0, 5)


def test_the_variables_set_lease_and_recoveries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYWORKFLOW_LEASE_SECONDS", "2.5")
    monkeypatch.setenv("PYWORKFLOW_MAX_RECOVERIES", "2")
    settings = config.engine_settings()
    assert (settings.lease_seconds, settings.max_recoveries) == (2.5, 2)


def test_configure_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYWORKFLOW_LEASE_SECONDS", "2.5")
    monkeypatch.setenv("PYWORKFLOW_MAX_RECOVERIES", "2")
    pyworkflow.configure(lease_seconds=7)
    pyworkflow.configure(storage="memory://")  # a later call keeps the explicit lease
    settings = config.engine_settings()
    assert (settings.lease_seconds, settings.max_recoveries) == (7, 2)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PYWORKFLOW_LEASE_SECONDS", "soon"),
        ("PYWORKFLOW_LEASE_SECONDS", "0"),
        ("PYWORKFLOW_LEASE_SECONDS", "nan"),
        ("PYWORKFLOW_MAX_RECOVERIES", "2.5"),
        ("PYWORKFLOW_MAX_RECOVERIES", "-1"),
    ],
)
def test_a_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=rf"{variable}.*{value!r}"):
        config.engine_settings()
