"""A hook's payload that arrives before its timeout ends the wait once (found with issue 20).

While a run keeps its coroutine (the test environment always; production below the horizon),
the hook's timeout is a timer in memory. A payload delivered first is logged as the hook's
outcome; when the timer then fires it must log nothing: before the fix it logged a second
HOOK_RECEIVED, which a replay of that log does not expect.
"""

from __future__ import annotations

from typing import Any

from pyworkflow import EventType, hook, sleep, step, workflow
from pyworkflow.testing import WorkflowEnvironment


@step(name="tht_noop")
async def noop() -> int:
    return 1


@workflow(name="tht_wf")
async def answered_early() -> list[Any]:
    first = await hook("answer", timeout="4s")
    await sleep("10s")  # the timeout passes while the run waits here
    return [first, await noop()]


async def test_a_payload_before_the_timeout_is_logged_once_and_nothing_expires(
    env: WorkflowEnvironment,
) -> None:
    run_id = await env.start(answered_early)
    await env.advance(0)
    await env.resume_hook(run_id, "answer", {"ok": True})
    assert await env.result(run_id) == [{"ok": True}, 1]
    kinds = [e.type for e in await env.events(run_id)]
    assert kinds.count(EventType.HOOK_RECEIVED) == 1
    assert EventType.HOOK_EXPIRED not in kinds
