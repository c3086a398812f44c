"""`pyworkflow replay` as a user runs it: real processes, a real SQLite file.

A script records two runs of ``checkout`` (and exports one as JSON) with the code of
``shop_v1``; the checker then replays them with ``shop_v1`` (unchanged), ``shop_v2`` (a step
inserted before the charge) and ``shop_patched`` (the same change behind ``patched``), each a
module defining the workflow under the same name, as successive deploys would.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from workers import cli, subprocess_env

pytestmark = pytest.mark.slow  # the CLI in processes of its own

SHOP = """
from pyworkflow import patched, step, workflow


@step()
async def fetch(tok: str) -> dict:
    return {{"tok": tok, "total": 3}}


@step()
async def fraud_check(order: dict) -> bool:
    return True


@step()
async def charge(order: dict) -> str:
    return f"charged {{order['total']}}"


@workflow(name="checkout")
async def checkout(tok: str) -> str:
    order = await fetch(tok)
    {change}
    return await charge(order)
"""
CHANGES = {
    "shop_v1": "pass",
    "shop_v2": "await fraud_check(order)",
    "shop_patched": "if patched('fraud-check'):\n        await fraud_check(order)",
}

RECORD = """
import asyncio
import sys

import pyworkflow
from pyworkflow.testing import save_history

import shop_v1


async def main() -> None:
    pyworkflow.configure(storage="sqlite:///shop.db")
    try:
        ids = [await pyworkflow.start(shop_v1.checkout, tok) for tok in ("a", "b")]
        for run_id in ids:
            await pyworkflow.get_workflow_result(run_id, timeout=10)
        save_history(await pyworkflow.get_workflow_events(ids[0]), "exported.json")
        print(" ".join(ids))
    finally:
        await pyworkflow.shutdown()


asyncio.run(main())
"""


class Shop:
    """The project directory: the modules, ``shop.db`` with two runs, ``exported.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for module, change in CHANGES.items():
            source = textwrap.dedent(SHOP).format(change=change)
            (root / f"{module}.py").write_text(source)
        (root / "record.py").write_text(textwrap.dedent(RECORD))
        recorded = subprocess.run(
            [sys.executable, "record.py"],
            cwd=root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        self.run_ids = recorded.stdout.split()
        assert len(self.run_ids) == 2, recorded

    def env(self) -> dict[str, str]:
        return subprocess_env(self.root)

    def replay(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return subprocess.run(
            cli("replay", *args),
            cwd=self.root,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def rows(self) -> tuple[list[Any], list[Any]]:
        db = sqlite3.connect(self.root / "shop.db")
        try:
            runs = db.execute("SELECT * FROM runs ORDER BY run_id").fetchall()
            events = db.execute("SELECT * FROM events ORDER BY run_id, seq").fetchall()
        finally:
            db.close()  # `with sqlite3.connect()` commits but does not close (3.13 warns)
        return runs, events


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return Shop(tmp_path_factory.mktemp("shop"))


STORAGE = ("--storage", "sqlite:///shop.db")


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_unchanged_code_replays_every_run(shop: Shop) -> None:
    before = shop.rows()
    result = shop.replay("-m", "shop_v1", *STORAGE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "replayed 2 histories: 2 ok, 0 diverged, 0 could not be replayed"
    )
    assert shop.rows() == before, "replaying writes nothing"


def test_a_changed_workflow_is_reported_with_exit_1(shop: Shop) -> None:
    before = shop.rows()
    env = shop.env()
    env.update(PYWORKFLOW_MODULE="shop_v2", PYWORKFLOW_STORAGE="sqlite:///shop.db")
    result = shop.replay(env=env)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "replayed 2 histories: 0 ok, 2 diverged, 0 could not be replayed"
    for run_id in shop.run_ids:
        assert (
            f"DIVERGED {run_id} (checkout) at command 1: the log has step 'charge', "
            "the code now issues step 'fraud_check'"
        ) in lines
    assert shop.rows() == before


def test_json_output_and_one_run(shop: Shop) -> None:
    first = shop.run_ids[0]
    result = shop.replay("-m", "shop_v2", *STORAGE, "--run-id", first, "--json")
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert (document["ok"], document["replayed"], document["diverged"], document["errors"]) == (
        False,
        1,
        1,
        0,
    )
    (run,) = document["runs"]
    assert (run["run_id"], run["workflow"], run["ok"], run["error"]) == (
        first,
        "checkout",
        False,
        None,
    )
    divergence = run["divergence"]
    assert (divergence["position"], divergence["logged"], divergence["issued"]) == (
        1,
        "step 'charge'",
        "step 'fraud_check'",
    )


def test_a_patched_change_replays(shop: Shop) -> None:
    result = shop.replay("-m", "shop_patched", *STORAGE, "--workflow", "checkout", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert sorted(r["run_id"] for r in document["runs"]) == sorted(shop.run_ids)


@pytest.mark.parametrize(("module", "code"), [("shop_v1", 0), ("shop_v2", 1)])
def test_an_exported_history_needs_no_database(shop: Shop, module: str, code: int) -> None:
    env = shop.env()
    env["PYWORKFLOW_STORAGE"] = "sqlite:///no-such.db"  # not opened for files
    result = shop.replay("-m", module, "--file", "exported.json", env=env)
    assert result.returncode == code, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("replayed 1 history: ")
    assert not (shop.root / "no-such.db").exists()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--workflow", "refund"), "refund"),
        (("--run-id", "run_nope"), "run_nope"),
        (("--file", "missing.json"), "missing.json"),
        (("--storage", "sqlite:///typo.db"), "typo.db"),
    ],
)
def test_a_user_mistake_is_one_line_and_exit_2(
    shop: Shop, args: tuple[str, ...], named: str
) -> None:
    given = args if "--storage" in args else (*STORAGE, *args)
    result = shop.replay("-m", "shop_v1", *given)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert named in one_line(result.stderr)
    assert not (shop.root / "typo.db").exists()


def test_without_modules_it_says_how_to_name_them(shop: Shop) -> None:
    result = shop.replay(*STORAGE)
    assert result.returncode == 2
    assert "--module" in one_line(result.stderr)
