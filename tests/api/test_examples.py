"""The examples a new user starts from run as documented, from a copy in a fresh directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the examples run as scripts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, tmp_path: Path, *args: str) -> str:
    script = tmp_path / name
    shutil.copy(EXAMPLES / name, script)
    done = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_expense_approval_waits_for_the_manager_then_pays_through_a_child(tmp_path: Path) -> None:
    approved = run_example("expense_approval.py", tmp_path)
    assert "R-1: approved by ana, paid as PAY-R-1" in approved
    assert "paying 49.99 EUR for R-1" in approved
    rejected = run_example("expense_approval.py", tmp_path, "R-2", "reject")
    assert "R-2: rejected by ana" in rejected
    assert "paying" not in rejected
