"""The local PostgreSQL server for tests: one database per test process, a schema per storage.

Each test process (each pytest-xdist worker is one) creates a database of its own
(``pwtest_<pid>``) when a test first needs it and drops it at the end of its session; each
storage a test asks for lives in a fresh schema of it (``?schema=s<n>``), which costs a few
milliseconds where a database would cost a few hundred. The server is the one ``.ci/run``
starts; ``PYWORKFLOW_TEST_POSTGRES`` names another (an admin URL whose user may create
databases). A server that cannot be reached fails the tests that need it: it is not a skip.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading

import asyncpg

ADMIN_URL = os.environ.get(
    "PYWORKFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)

_schemas = itertools.count(1)


class PostgresServer:
    """A database created for this test session; hands out URLs of fresh schemas in it."""

    def __init__(self, admin_url: str = ADMIN_URL) -> None:
        self.admin_url = admin_url
        self.database = f"pwtest_{os.getpid()}"
        base, _, _ = admin_url.rpartition("/")
        self.url = f"{base}/{self.database}"
        """The session database (its ``public`` schema is left empty)."""

    def create(self) -> None:
        self._run_admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        self._run_admin(f'CREATE DATABASE "{self.database}"')

    def drop(self) -> None:
        self._run_admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def _run_admin(self, sql: str) -> None:
        # On a thread of its own: the session fixture may be set up inside a running loop.
        errors: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._admin(sql))
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]

    def fresh_url(self, **options: str) -> str:
        """A URL of a schema nobody used yet (created by the storage when it opens)."""
        query = "&".join(f"{k}={v}" for k, v in {"schema": f"s{next(_schemas)}", **options}.items())
        return f"{self.url}?{query}"

    async def _admin(self, sql: str) -> None:
        try:
            conn = await asyncpg.connect(self.admin_url)
        except (OSError, asyncpg.PostgresError) as exc:
            raise RuntimeError(
                f"the tests need PostgreSQL at {self.admin_url} ({exc}); start it as .ci/run "
                "does, or point PYWORKFLOW_TEST_POSTGRES at another server"
            ) from exc
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
