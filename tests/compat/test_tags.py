"""``@workflow(tags=[...])``: stored with each run, on every backend; filters the listings."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

import pyworkflow
from pyworkflow import InputError, WorkflowDefinitionError, step, workflow
from pyworkflow.storage import Storage
from workers import cli, subprocess_env


@step
async def tg_echo(x: int) -> int:
    return x


@workflow(tags=["billing", "eu"])
async def tg_billing(x: int) -> int:
    return await tg_echo(x)


@workflow(tags=["billing", "us_1%"])  # LIKE's wildcards are only characters in a tag
async def tg_billing_us(x: int) -> int:
    return await tg_echo(x)


@workflow
async def tg_plain(x: int) -> int:
    return await tg_echo(x)


async def test_tags_are_stored_and_filter_runs(pw: Storage) -> None:
    eu = await pyworkflow.start(tg_billing, 1)
    us = await pyworkflow.start(tg_billing_us, 2)
    plain = await pyworkflow.start(tg_plain, 3)
    for run_id in (eu, us, plain):
        await pyworkflow.get_workflow_result(run_id)
    assert (await pyworkflow.get_workflow_run(eu)).tags == ("billing", "eu")
    assert (await pyworkflow.get_workflow_run(plain)).tags == ()

    async def ids(*tags: str) -> set[str]:
        return {r.run_id for r in await pyworkflow.list_workflow_runs(tags=list(tags))}

    assert await ids("billing") == {eu, us}
    assert await ids("billing", "eu") == {eu}
    assert await ids("us_1%") == {us}
    assert await ids("us_1") == set()  # whole tags only, wildcards taken literally
    assert await ids("u%") == set()
    assert await ids("eu", "us_1%") == set()
    assert len(await ids()) == 3
    with pytest.raises(InputError, match="tags"):
        await pyworkflow.list_workflow_runs(tags="billing")


def test_bad_tags_fail_at_decoration() -> None:
    with pytest.raises(WorkflowDefinitionError, match="without commas"):

        @workflow(tags=["a,b"])
        async def tg_comma() -> None:
            pass

    with pytest.raises(WorkflowDefinitionError, match="list of strings"):

        @workflow(tags="billing")
        async def tg_string() -> None:
            pass


@pytest.mark.slow
def test_runs_list_filters_by_tag(tmp_path: Path) -> None:
    (tmp_path / "tagwf.py").write_text(
        textwrap.dedent(
            """
            import asyncio, sys
            import pyworkflow
            from pyworkflow import step, workflow

            @step
            async def s(x: int) -> int:
                return x

            @workflow(tags=["nightly", "eu"])
            async def tagged(x: int) -> int:
                return await s(x)

            @workflow
            async def untagged(x: int) -> int:
                return await s(x)

            async def main() -> None:
                pyworkflow.configure(storage=sys.argv[1])
                print(await pyworkflow.start(tagged, 1))
                await pyworkflow.run(untagged, 2)
                await pyworkflow.run(tagged, 3)

            if __name__ == "__main__":
                asyncio.run(main())
            """
        )
    )
    url = f"sqlite:///{tmp_path / 'tags.db'}"
    env = subprocess_env(tmp_path)
    seeded = subprocess.run(
        [*cli()[:1], str(tmp_path / "tagwf.py"), url],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert seeded.stdout.startswith("run_")
    listed = subprocess.run(
        cli("runs", "list", "--tag", "nightly", "--tag", "eu", "--storage", url, "--json"),
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    runs = json.loads(listed.stdout)["runs"]
    assert [r["workflow"] for r in runs] == ["tagged", "tagged"]
    assert all(r["tags"] == ["nightly", "eu"] for r in runs)
    table = subprocess.run(
        cli("runs", "list", "--tag", "weekly", "--storage", url),
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert "tagged" not in table.stdout
