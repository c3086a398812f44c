"""The read model's place (DESIGN §3): it renders nothing and imports neither CLI nor engine.

Read from the source, so that a stray import fails here before any contract tool runs:
``pyworkflow.inspect`` imports no ``pyworkflow.cli``, no ``pyworkflow._engine``, no storage
backend (only the ``pyworkflow.storage`` package face), and neither click nor rich, and it
prints nothing; ``pyworkflow.cli`` imports no ``pyworkflow._engine`` and reads storage only
through the read model and the package face.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import pyworkflow

SRC = Path(pyworkflow.__file__).parent
INSPECT = sorted((SRC / "inspect").glob("*.py"))
CLI = sorted((SRC / "cli").glob("*.py"))


def imported(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def under(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("path", INSPECT, ids=[p.name for p in INSPECT])
def test_the_read_model_imports_no_renderer_engine_or_backend(path: Path) -> None:
    names = set(imported(path))
    assert not {n for n in names if under(n, "pyworkflow.cli", "pyworkflow._engine")}
    assert not {n for n in names if under(n, "click", "rich", "starlette")}
    assert not {n for n in names if n.startswith("pyworkflow.storage.")}
    calls = ast.walk(ast.parse(path.read_text(encoding="utf-8")))
    assert not [c for c in calls if isinstance(c, ast.Name) and c.id == "print"]


# The one storage module the CLI names besides the face: `db upgrade` reports the schema
# revision it migrated to (to move behind the face when storage/ is split by backend).
_CLI_STORAGE_MODULES = {"pyworkflow.storage.sql.migrate"}


@pytest.mark.parametrize("path", CLI, ids=[p.name for p in CLI])
def test_the_cli_reads_through_the_read_model(path: Path) -> None:
    names = set(imported(path))
    assert not {n for n in names if under(n, "pyworkflow._engine")}
    backends = {n for n in names if n.startswith("pyworkflow.storage.")}
    assert backends <= _CLI_STORAGE_MODULES
