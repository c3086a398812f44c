"""Code written for the pyworkflow documentation runs here unchanged: its local examples.

Each example of ``seed-examples/local/`` (the documentation's runnable scripts, kept beside
this repository in ``../shared/reference/``, as on CI) is copied byte for byte into a fresh
directory and run as a script with our package installed; it must exit 0 and print what
really happened: statuses, results, event counts, step outputs. ``12_schedules.py`` waits for
schedules (another issue).

The examples are read, never copied into this repository. Where ``../shared/reference`` is
missing the tests FAIL, naming the path: a clone without it cannot show the examples run.
Set ``PYWORKFLOW_SEED_EXAMPLES`` to another directory holding ``durable/`` and
``transient/`` to point at a copy, or to ``skip`` to skip them knowingly (a skip, never a pass).

Known difference, asserted as such: ``08_cancellation.py``'s second example sleeps with
``asyncio.sleep`` in workflow code, which our replay rules refuse (``determinism.py``): that
run fails with the error saying so, and the example still exits 0.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each example runs as a script

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO.parent / "shared" / "reference" / "seed-examples" / "local"

# Lines (regular expressions) each example must print, in this order.
EXPECTED: dict[str, list[str]] = {
    "durable/01_basic_workflow.py": [
        r"Processing order order-123",
        r"Status: completed",
        r"Result: \{'order_id': 'order-123', 'status': 'processed', 'charged': 99.99, "
        r"'notified': True\}",
        r"=== Event Log \(8 events\) ===",
        r"1: workflow_started",
        r"Step: process_order",
        r"Step: charge_payment",
        r"Step: send_notification",
        r"8: workflow_completed",
    ],
    "durable/02_file_storage.py": [
        r"Status: completed",
        r"=== Event Log \(8 events\) ===",
        r"pyworkflow\.db \(\d+ bytes\)",
    ],
    "durable/03_retries.py": [
        r"Calling external API \(attempt 1\)",
        r"Status after attempt 1: suspended",
        r"Status after attempt 2: suspended",
        r"Result: \{.*'attempts': 3, 'finalized': True\}",
        r"Final status: completed",
        r"=== Complete Event Log \(12 events\) ===",
        r"5: step_retrying \(attempt=1, step=call_flaky_api\)",
        r"Retry after: 1\.0s, resume at: \d{4}-\d\d-\d\dT",
        r"Total attempts in this run: 3",
    ],
    "durable/04_long_running.py": [
        r"Workflow status after sleep: suspended",
        r"Processing batch batch-001",
        r"Result: \{'batch_id': 'batch-001', 'status': 'completed', 'items': 1000\}",
        r"Final status: completed",
    ],
    "durable/05_event_log.py": [
        r"Result: 20",
        r"=== Event Log for simple_workflow \(6 events\) ===",
        r"Sequence: 1",
        r"step_name: step_a",
        r"Result: 25",
        r"=== Event Log for complex_workflow \(8 events\) ===",
    ],
    "durable/06_idempotency.py": [
        r"Execution count: 1 \(not incremented!\)",
        r"run_id_1 == run_id_2: True",
        r"Workflow re-executed: False",
        r"SUCCESS: Same run_id returned",
        r"Execution count: 2 \(incremented!\)",
    ],
    "durable/07_hooks.py": [
        r"Status: suspended",
        r"Resume result: received",
        r"Result: \{'order_id': 'ORDER-001', 'status': 'fulfilled'\}",
        r"Received: approved=True, reviewer=jane\.doe@example\.com",
        r"Result: \{'order_id': 'ORDER-002', 'status': 'fulfilled'\}",
        r"Result: \{'order_id': 'ORDER-003', 'status': 'cancelled', "
        r"'reason': 'Insufficient inventory'\}",
        r"Event Log \(8 events\):",
        r"hook_received",
    ],
    "durable/08_cancellation.py": [
        r"Workflow status: suspended",
        r"Cancellation detected! Reason: Customer cancelled order",
        r"\[Cleanup\] Releasing inventory for order order-001",
        r"\[Cleanup\] Refunding payment for order order-001",
        r"Cancellation initiated: True",
        r"Final status: cancelled",
        r"Workflow status: failed",  # asyncio.sleep in workflow code: see the module docstring
        r"Cancellation initiated: False",
        r"Workflow status: completed",
        r"Cancellation result: False",
    ],
    "durable/09_child_workflows.py": [
        r"\[PaymentWorkflow\] Completed for order order-456",
        r"\[ShippingWorkflow\] Completed for order order-456",
        r"Status: completed",
        r"Result: \{'order_id': 'order-456', 'status': 'fulfilled'",
        r"Child Workflows \(3 total\):",
        r"Nesting Depth: 1",
    ],
    "durable/10_child_workflow_patterns.py": [
        r"Result: \{'level1': True, 'child': \{'level2': 'nested-task', 'grandchild': "
        r"\{'name': 'level3-nested-task', 'completed': True\}\}\}",
        r"\[ParallelParent\] All children completed",
        r"Result: \{'children_count': 3",
        # Its failing step retries (3 retries, exponential: 1 s, 2 s, 4 s): start() returns
        # while the child waits for its first retry, as on their local runtime.
        r"DEMO 3: Child Workflow Error Handling",
        r"Result: None",
    ],
    "durable/11_continue_as_new.py": [
        r"Workflow chain has 4 runs:",
        r"Result: Completed! Processed 30 total items",
        r"Polling chain has 4 runs",
        r"Final result: Polling complete after 4 polls",
        r"Total runs: 4",
        r"\[START\] run_",
        r"Continued from: \(none\)",
        r"Continued to: run_",
        r"\[CURRENT\] run_",
        r"Status: completed",
        r"Continued from: run_",
        r"Continued to: \(none\)",
    ],
    "durable/13_step_context.py": [
        r"\[validate\] Workspace: ws-123",
        r"\[validate\] Priority: high",
        r"\[payment\] Processing for user user-789 in workspace ws-123",
        r"Context updated: priority -> completed",
        r"\[notify\] Sending to user user-789",
        r"Status: completed",
        r"Stored context: \{'workspace_id': 'ws-123', 'user_id': 'user-789', "
        r"'order_id': 'order-456', 'priority': 'completed'",
        r"\[validate\] Workspace: ws-sleep",
        r"Status: suspended",  # its 1 s sleep: start() returns while it sleeps
    ],
    "durable/14_child_workflow_from_step.py": [
        r"Started enrichment child: run_",
        r"Status: completed",
        r"Child workflows \(1 total\):",
        r"Workflow: enrichment_workflow",
        r"Child workflows \(2 total\):",
    ],
    "transient/01_quick_tasks.py": [
        r"Sending notification for order order-123",
        r"Workflow completed: run_",
    ],
    "transient/02_retries.py": [
        r"Calling external API \(attempt 3\)",
        r"Total attempts: 3",
        r"Workflow failed with FatalError: Negative values not allowed",
    ],
    "transient/03_sleep.py": [
        r"Woke up from sleep!",
        r"Total time: 3\.\d seconds",
        r"Total time: 4\.\d seconds",
    ],
}
# Runs left unfinished at exit, which the process names on stderr (see pyworkflow.unfinished).
UNFINISHED_AT_EXIT = {
    "durable/10_child_workflow_patterns.py": "error_handling_parent_workflow",
    "durable/13_step_context.py": "order_workflow_with_sleep",
}


SCHEDULES = "12_schedules.py"


def examples_dir() -> Path:
    chosen = os.environ.get("PYWORKFLOW_SEED_EXAMPLES", "")
    if chosen == "skip":
        pytest.skip("PYWORKFLOW_SEED_EXAMPLES=skip: the documentation's examples not run")
    found = Path(chosen) if chosen else DEFAULT
    if not (found / "durable").is_dir():
        pytest.fail(
            f"the pyworkflow documentation's examples are not at {found} (expected beside this "
            "repository, as on CI); set PYWORKFLOW_SEED_EXAMPLES to their directory, or to "
            "'skip' to skip these tests knowingly"
        )
    return found


def test_every_example_is_checked() -> None:
    found = examples_dir()
    scripts = {
        str(p.relative_to(found))
        for p in found.glob("*/[0-9]*.py")
        if p.name != SCHEDULES  # test_seed_schedules_example.py
    }
    assert scripts == set(EXPECTED)


def run_example(name: str, tmp_path: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run the example ``name`` unchanged, as a script in ``tmp_path``; it must exit 0."""
    source = examples_dir() / name
    script = tmp_path / source.name
    shutil.copyfile(source, script)
    assert script.read_bytes() == source.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYWORKFLOW_")}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def expect_in_order(name: str, out: str, patterns: list[str]) -> list[re.Match[str]]:
    """Each pattern found in ``out`` after the previous one's match; the matches."""
    at = 0
    found = []
    for pattern in patterns:
        match = re.compile(pattern).search(out, at)
        assert match is not None, f"{name}: no {pattern!r} after:\n{out[at:]}"
        found.append(match)
        at = match.end()
    return found


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_unchanged(name: str, tmp_path: Path) -> None:
    done = run_example(name, tmp_path)
    expect_in_order(name, done.stdout, EXPECTED[name])
    left = UNFINISHED_AT_EXIT.get(name)
    if left is None:
        assert "had not ended when it exited" not in done.stderr, done.stderr
    else:
        assert f"({left}) in memory://" in done.stderr, done.stderr
