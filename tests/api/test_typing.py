"""pyworkflow is typed for its users: ``mypy --strict`` checks calls into it.

A small user module (written to ``tmp_path``) is checked by mypy in a subprocess, as a user's
CI would: correct calls pass, a wrong argument to ``run``/``start``/``start_child_workflow`` is
an error at its line, and ``reveal_type`` shows the workflow's return type where a result comes
back (a ``ChildWorkflowHandle`` of it with ``wait_for_completion=False``). The wheel ships
``py.typed``, without which mypy would see pyworkflow as untyped (``Any`` everywhere).
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from workers import subprocess_env

pytestmark = pytest.mark.slow  # mypy and a wheel build, in processes of their own

USER_MODULE = """
from pyworkflow import ChildWorkflowHandle, run, start, start_child_workflow, step, workflow


@step()
async def double(x: int) -> int:
    return x * 2


@workflow()
async def total(n: int, *, label: str = "") -> dict[str, int]:
    return {label: await double(n)}


@workflow()
async def parent(n: int) -> int:
    child = await start_child_workflow(total, n, label="a")
    reveal_type(child)  # R: dict[str, int]
    handle = await start_child_workflow(
        total, n, wait_for_completion=False, parent_close_policy="abandon"
    )
    reveal_type(handle)  # R: pyworkflow.children.ChildWorkflowHandle[dict[str, int]]
    waited = await start_child_workflow(total, n, wait_for_completion=True)
    reveal_type(waited)  # R: dict[str, int]
    await start_child_workflow(total, "n")  # E: call-overload
    kept: ChildWorkflowHandle[dict[str, int]] = handle
    return len(child) + len(waited) + len(kept.run_id)


async def main() -> None:
    result = await run(total, 2, label="x")
    reveal_type(result)  # R: dict[str, int]
    run_id = await start(total, 3)
    reveal_type(run_id)  # R: str
    await start(total, 3, idempotency_key="order-3")
    once = await run(total, 4, idempotency_key="order-4")
    reveal_type(once)  # R: dict[str, int]
    await start("total", "anything")
    await run(total, "two")  # E: call-overload
    await run(total, 2, colour="red")  # E: call-arg
    await start(total, "three")  # E: call-overload
    await double("four")  # E: arg-type
"""


def expectations(source: str) -> tuple[dict[int, str], dict[int, str]]:
    """The revealed types (``# R: type``) and error codes (``# E: code``) by line."""
    revealed, errors = {}, {}
    for number, line in enumerate(source.splitlines(), start=1):
        if match := re.search(r"# R: (.+)$", line):
            revealed[number] = match.group(1)
        if match := re.search(r"# E: ([\w-]+)$", line):
            errors[number] = match.group(1)
    return revealed, errors


def test_user_code_under_mypy_strict_sees_pyworkflows_types(tmp_path: Path) -> None:
    (tmp_path / "user_flows.py").write_text(USER_MODULE)
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            "--cache-dir",
            str(tmp_path / "cache"),
            "user_flows.py",
        ],
        cwd=tmp_path,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    revealed, errors = {}, {}
    for line in checked.stdout.splitlines():
        if match := re.match(r"user_flows\.py:(\d+): note: Revealed type is \"(.+)\"$", line):
            revealed[int(match.group(1))] = match.group(2)
        elif match := re.match(r"user_flows\.py:(\d+): error: .*\[([\w-]+)\]$", line):
            errors[int(match.group(1))] = match.group(2)
    assert (revealed, errors) == expectations(USER_MODULE), checked.stdout + checked.stderr


def test_the_wheel_ships_py_typed_and_the_migrations(tmp_path: Path) -> None:
    root = Path(__file__).parents[2]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(root),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # The distribution is pyworkflow-durable (README, "Installing"); the package is pyworkflow.
    (wheel,) = tmp_path.glob("pyworkflow_durable-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pyworkflow/py.typed" in names
    # MIT asks that the notice travel with every copy.
    (notice,) = [name for name in names if name.endswith(".dist-info/licenses/LICENSE")]
    assert "MIT License" in zipfile.ZipFile(wheel).read(notice).decode()
    # Opening a database runs these: a wheel without them could not create one.
    migrations = root / "src/pyworkflow/storage/sql/migrations"
    shipped = {
        path.relative_to(root / "src").as_posix()
        for path in migrations.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert len([name for name in shipped if "/versions/" in name]) >= 5
    assert shipped <= set(names)
