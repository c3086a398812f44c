"""Expense approval: a workflow that waits for a person, and a child workflow that pays.

    python examples/expense_approval.py              # approve report R-1 as "ana"
    python examples/expense_approval.py R-2 reject   # another report, rejected

The workflow asks a manager by "email" (a step that prints a link with the hook's token), then
suspends: it holds no worker while it waits. This script plays the manager too: it reads the
token from the mailbox file the step wrote and calls ``resume_hook`` with a typed payload, as a
web handler in another process would. An approval starts a child workflow that pays out; its
result comes back to the parent. The runs live in ``expense_approval.db`` next to this file.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

import pyworkflow
from pyworkflow import (
    HookExpiredError,
    define_hook,
    resume_hook,
    sleep,
    start_child_workflow,
    step,
    workflow,
)

HERE = Path(__file__).resolve().parent
DATABASE = HERE / "expense_approval.db"
MAILBOX = HERE / "expense_approval.mailbox"


@dataclass
class Decision:
    """What the manager sends back; resume_hook refuses a payload that does not fit."""

    approved: bool
    reviewer: str


decision_hook = define_hook("manager_decision", Decision)


@step()
async def email_manager(report_id: str, token: str) -> str:
    # A real step would send mail; the token is the only way to answer.
    MAILBOX.write_text(token)
    link = f"https://expenses.example/decide/{token}"
    print(f"  mail to the manager about {report_id}: {link[:48]}...")
    return link


@step()
async def pay(report_id: str, cents: int) -> str:
    print(f"  paying {cents / 100:.2f} EUR for {report_id}")
    return f"PAY-{report_id}"


@workflow()
async def payout(report_id: str, cents: int) -> str:
    await sleep("1s")  # e.g. wait for the next payment batch
    return await pay(report_id, cents)


@workflow(max_duration="30d")
async def expense_approval(report_id: str, cents: int) -> str:
    async def ask(token: str) -> None:
        await email_manager(report_id, token)

    try:
        decision = await decision_hook(timeout="7d", on_created=ask)
    except HookExpiredError:
        return f"{report_id}: no decision within 7 days"
    if not decision.approved:
        return f"{report_id}: rejected by {decision.reviewer}"
    receipt = await start_child_workflow(payout, report_id, cents)
    return f"{report_id}: approved by {decision.reviewer}, paid as {receipt}"


async def main(report_id: str, verdict: str) -> None:
    pyworkflow.configure(storage=f"sqlite:///{DATABASE}")
    MAILBOX.unlink(missing_ok=True)
    run_id = await pyworkflow.start(expense_approval, report_id, 4999)
    print(f"run {run_id} waits for the manager")
    # The step writes the mail once the hook waits; a file, as a real inbox would be.
    while not MAILBOX.exists():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    token = MAILBOX.read_text()
    await resume_hook(token, {"approved": verdict == "approve", "reviewer": "ana"})
    print(await pyworkflow.get_workflow_result(run_id, timeout=30))
    await pyworkflow.shutdown()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0] if args else "R-1", args[1] if len(args) > 1 else "approve"))
