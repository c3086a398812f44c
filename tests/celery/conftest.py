"""Fixtures of tests/celery: real ``celery worker`` processes, real brokers, real storage.

A ``Deployment`` is what a user runs: a broker, a storage URL, and Celery workers
(``celery -A pyworkflow.celery worker``) started by ``CeleryWorkers``, which ends only the
processes it started, by pid. ``deployed`` is a per-module deployment with one running
worker, shared by the tests of a module, once on Redis with PostgreSQL and once on RabbitMQ
with SQLite (a worker takes a second or more to start); tests that kill or restart workers
build their own with ``deployment``. ``client`` configures this process to send to a deployment
(``configure(executor="celery", ...)``) and shuts the runtime down afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery_workers import RABBITMQ, CeleryWorkers, Deployment, fresh_redis, purge_rabbitmq

import pyworkflow
from postgres_server import PostgresServer
from pyworkflow import config


def _deployment(
    tmp: Path, broker: str, storage: str, env: dict[str, str] | None = None
) -> Deployment:
    if broker.startswith("amqp"):
        purge_rabbitmq(broker)
    return Deployment(broker, storage, CeleryWorkers(tmp, broker, storage, env), tmp)


@pytest.fixture(scope="module", params=["redis+postgres", "rabbitmq+sqlite"])
def deployed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One deployment with one running worker (``-c 2``), for every test of a module in turn.

    At the end its workers' logs hold no ERROR line or traceback, but those with one of the
    module's ``EXPECTED_ERRORS``.
    """
    tmp = tmp_path_factory.mktemp(request.param.replace("+", "_"))
    if request.param == "redis+postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        deployment = _deployment(tmp, fresh_redis(), server.fresh_url())
    else:
        deployment = _deployment(tmp, RABBITMQ, f"sqlite:///{tmp / 'runs.db'}")
    try:
        deployment.workers.start()
        yield deployment
        expected = getattr(request.module, "EXPECTED_ERRORS", ())
        assert not deployment.unexpected_errors(*expected), deployment.context()
    finally:
        deployment.workers.end_all()


@pytest.fixture
def deployment(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Deployment]]:
    """Make a deployment of this test with no worker started yet: ``deployment(storage=...)``.

    ``storage`` is ``"postgres"`` (a fresh schema) or ``"sqlite"``; ``broker`` ``"redis"`` (a
    flushed database of its own) or ``"rabbitmq"``; ``env`` more variables for its workers.
    """
    made: list[Deployment] = []

    def make(
        storage: str = "postgres", broker: str = "redis", env: dict[str, str] | None = None
    ) -> Deployment:
        if storage == "postgres":
            url = request.getfixturevalue("postgres_server").fresh_url()
        else:
            url = f"sqlite:///{tmp_path / 'runs.db'}"
        made.append(
            _deployment(tmp_path, fresh_redis() if broker == "redis" else RABBITMQ, url, env)
        )
        return made[-1]

    try:
        yield make
    finally:
        for each in made:
            each.workers.end_all()


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Callable[..., None]]:
    """``client(deployment, **settings)`` configures this process to start runs there.

    ``settings`` go to ``configure``: a client sends the first steps of the runs it starts
    itself, so their watchdog is its ``dispatch_grace``, not the workers'.
    """
    # Put back whatever settings were there before: configure() merges into them.
    monkeypatch.setattr(config, "_settings", config._settings)

    def connect(deployment: Deployment, **settings: Any) -> None:
        pyworkflow.configure(
            executor="celery", broker=deployment.broker, storage=deployment.storage, **settings
        )

    try:
        yield connect
    finally:
        await pyworkflow.shutdown()
