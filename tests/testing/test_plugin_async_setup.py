"""A user's first async test with ``workflow_env`` runs whatever the project says of asyncio.

Each test writes a small project, as a user would start one (a ``pyproject.toml`` and a test
module), and runs pytest on it in a process of its own, where pyworkflow's plugin is loaded
from its entry point as in the user's environment.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow  # pytest in a subprocess

pytest_plugins = ["pytester"]

USER_TESTS = """
import pytest
from pyworkflow import sleep, step, workflow


@step(name="first_greet")
async def greet(name: str) -> str:
    return f"hello {name}"


@workflow(name="first_reminder")
async def reminder(name: str) -> str:
    await sleep("2d")
    return await greet(name)


async def test_a_first_test(workflow_env):
    assert await workflow_env.run(reminder, "ada") == "hello ada"


@pytest.mark.parametrize("name", ["bo", "cy"])
async def test_parametrized(workflow_env, name):
    assert await workflow_env.run(reminder, name) == f"hello {name}"


class TestInAClass:
    async def test_method(self, workflow_env):
        assert await workflow_env.run(reminder, "di") == "hello di"


@pytest.mark.asyncio
async def test_already_marked(workflow_env):
    assert await workflow_env.run(reminder, "ed") == "hello ed"


def test_a_sync_test_is_left_alone():
    assert greet.__name__ == "greet"
"""

# Not in auto mode: there pytest-asyncio takes every async test, anyio's too (its setting).
ANYIO_TEST = """

@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_marked_for_anyio(workflow_env):
    assert await workflow_env.run(reminder, "fa") == "hello fa"
"""

# No cache directory in the user's project; no hypothesis (its start-up would dominate).
OPTIONS = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:randomly"]
# A user session that hangs is killed (and the test fails) rather than outliving the test.
SUBPROCESS_TIMEOUT = 60


def write_project(pytester: pytest.Pytester, pytest_settings: str, *, anyio: bool = True) -> None:
    pytester.makefile(
        ".toml", pyproject=f'[project]\nname = "users-app"\nversion = "0"\n{pytest_settings}'
    )
    pytester.makepyfile(test_reminders=USER_TESTS + (ANYIO_TEST if anyio else ""))


def test_no_asyncio_setting_at_all(pytester: pytest.Pytester) -> None:
    write_project(pytester, "")
    result = pytester.runpytest_subprocess(*OPTIONS, timeout=SUBPROCESS_TIMEOUT)
    result.assert_outcomes(passed=7)
    assert "not natively supported" not in result.stdout.str()


def test_strict_mode_said_outright(pytester: pytest.Pytester) -> None:
    write_project(pytester, '[tool.pytest.ini_options]\nasyncio_mode = "strict"\n')
    result = pytester.runpytest_subprocess(*OPTIONS, timeout=SUBPROCESS_TIMEOUT)
    result.assert_outcomes(passed=7)


def test_auto_mode(pytester: pytest.Pytester) -> None:
    settings = (
        '[tool.pytest.ini_options]\nasyncio_mode = "auto"\n'
        'asyncio_default_fixture_loop_scope = "function"\nfilterwarnings = ["error"]\n'
    )
    write_project(pytester, settings, anyio=False)
    result = pytester.runpytest_subprocess(*OPTIONS, timeout=SUBPROCESS_TIMEOUT)
    result.assert_outcomes(passed=6, warnings=0)


def test_without_pytest_asyncio_the_failure_says_what_to_install(
    pytester: pytest.Pytester,
) -> None:
    write_project(pytester, "")
    # -p no:asyncio: pytest-asyncio is not loaded, as where it is not installed.
    result = pytester.runpytest_subprocess(*OPTIONS, "-p", "no:asyncio", timeout=SUBPROCESS_TIMEOUT)
    # The four async tests that use the fixture fail at set-up (five items with the
    # parameters); the sync one passes, and anyio runs the one marked for it.
    result.assert_outcomes(passed=2, errors=5)
    out = result.stdout.str()
    assert (
        "test_a_first_test is an async test using the workflow_env fixture, and no plugin "
        "runs async tests here: install pytest-asyncio (pip install "
        "'pyworkflow-durable[testing]')"
    ) in out
    assert "not natively supported" not in out
