"""The database the hooks and run-family tests read, and the in-process CLI on it.

``family`` seeds, once per test module, an SQLite file with the runs ``familycli_flows``
describes; ``own_family`` is a copy of it for a test that changes runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import familycli_flows
import pytest
from inprocess_cli import Family, InProcessCli


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> Family:
    """A database with the runs of ``familycli_flows.seed``, seeded once per test module."""
    cli = InProcessCli(tmp_path_factory.mktemp("family") / "family.db")
    ids, tokens = cli.run(familycli_flows.seed)
    return Family(cli, ids, tokens)


@pytest.fixture
def own_family(family: Family, tmp_path: Path) -> Family:
    """A copy of the seeded database, for a test that changes runs."""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{family.cli.db}{suffix}").exists():
            shutil.copy(f"{family.cli.db}{suffix}", f"{tmp_path / 'own.db'}{suffix}")
    return Family(InProcessCli(tmp_path / "own.db"), family.ids, family.tokens)
