"""The pages in a real browser: Debian's chromium driven by Playwright, nothing downloaded.

A real ``pyworkflow dashboard`` process and a real ``pyworkflow worker`` share an SQLite file;
the test clicks through as an operator would: sign in, the runs list, a failed run resumed
until it completes, a waiting run's hook delivered through the form, a sleeping run cancelled,
a run whose argument is a script tag shown as text with no dialog ever opened, a schedule
triggered, paused, backfilled and deleted (after a confirmation page) from the Schedules
page, and a stream run reached from its parent's page. Each page
is kept as a screenshot under ``$DASHBOARD_SCREENSHOTS`` (default: the test's tmp_path).
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pyworkflow import RunStatus
from workers import WorkerProcesses, create_unleased_run, wait_for_run

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TOKEN = "browser-token-5678"
SCRIPT = "<script>alert(1)</script>"
FLOWS = Path(__file__).with_name("dash_flows.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_up(url: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"the dashboard did not answer at {url}"
        time.sleep(0.1)


def _wait_for_stream_step(
    db: Path, stream_run_id: str, step: str, *, cursor: int, within: float = 20.0
) -> None:
    """Wait until the stream step took the signals up to ``cursor`` and waits for more."""
    deadline = time.monotonic() + within
    query = (
        "SELECT seen_seq, status FROM stream_subscriptions WHERE stream_run_id = ? AND "
        "step_name = ?"
    )
    while True:
        with sqlite3.connect(db) as connection:
            row = connection.execute(query, (stream_run_id, step)).fetchone()
        if row == (cursor, "waiting"):
            return
        assert time.monotonic() < deadline, f"stream step {step} still at {row}"
        time.sleep(0.1)


@pytest.fixture
def served(
    tmp_path: Path, worker_processes: WorkerProcesses, worker_env: dict[str, str]
) -> tuple[str, Path]:
    """A dashboard and a worker on one SQLite file: (base URL, database)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no browser at {CHROMIUM}: the dashboard's browser tests need Debian's chromium "
            "(apt-get install -y chromium; .ci/run installs it)"
        )
    (tmp_path / "dash_flows.py").write_text(FLOWS.read_text())
    db = tmp_path / "dash.db"
    url = f"sqlite:///{db}"
    worker_processes.start("db", "upgrade", "--storage", url, log=tmp_path / "db.log").wait()
    port = _free_port()
    worker_processes.start(
        "dashboard", "--module", "dash_flows", "--storage", f"sqlite:///{db}",
        "--port", str(port), "--write-token", TOKEN, log=tmp_path / "dashboard.log",
    )  # fmt: skip
    worker_processes.start(
        "worker", "run", "--module", "dash_flows", "--storage", f"sqlite:///{db}",
        "--poll-interval", "0.1", log=tmp_path / "worker.log",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    _wait_up(f"{base}/api/meta")
    return base, db


def test_click_through_resume_deliver_cancel_and_escaping(
    served: tuple[str, Path], tmp_path: Path, worker_processes: WorkerProcesses
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, db = served
    shots = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    marker = tmp_path / "fixed"
    failed = create_unleased_run(db, "dash_fragile", str(marker))
    waiting = create_unleased_run(db, "dash_approval", "new laptop")
    sleeping = create_unleased_run(db, "dash_nap", 3600)
    scripted = create_unleased_run(db, "dash_greet", SCRIPT)
    wait_for_run(db, failed, lambda r: r.status is RunStatus.FAILED, 20)
    wait_for_run(db, waiting, lambda r: r.status is RunStatus.SUSPENDED, 20)
    wait_for_run(db, sleeping, lambda r: r.status is RunStatus.SUSPENDED, 20)
    wait_for_run(db, scripted, lambda r: r.status is RunStatus.COMPLETED, 20)
    created = worker_processes.start(
        "schedules", "create", "dash_greet", "--cron", "17 3 * * *", "--timezone",
        "Europe/Prague", "--id", "nightly", "--args-json", '["night"]', "--module", "dash_flows",
        "--storage", f"sqlite:///{db}", log=tmp_path / "schedules.log",
    )  # fmt: skip
    assert created.wait() == 0, (tmp_path / "schedules.log").read_text()

    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

            page.goto(f"{base}/runs")
            expect(page.locator("text=Sign in to change runs")).to_be_visible()
            page.click("text=Sign in to change runs")
            page.fill("input[name=token]", TOKEN)
            page.click("button[type=submit]")
            expect(page.locator(".notice")).to_contain_text("Signed in")
            expect(page.locator("[data-count=failed]")).to_have_text("1")
            page.screenshot(path=str(shots / "01-runs.png"), full_page=True)

            # A run whose argument is a script tag: the text is shown, nothing runs.
            page.click(f"a[href='/runs/{scripted}']")
            expect(page.locator("#value-args")).to_contain_text(SCRIPT)
            page.screenshot(path=str(shots / "02-escaped-run.png"), full_page=True)
            page.go_back()

            # A failed run: resume it, and the page follows it until it completes.
            page.click(f"a[href='/runs/{failed}']")
            expect(page.locator("#run-status")).to_have_text("failed")
            expect(page.locator(".error").first).to_contain_text("RuntimeError")
            page.screenshot(path=str(shots / "03-failed-run.png"), full_page=True)
            marker.touch()
            page.click("#resume")
            expect(page.locator("#run-status")).to_have_text("completed", timeout=20_000)
            expect(page.locator("#value-result")).to_contain_text("fixed")
            page.screenshot(path=str(shots / "04-resumed-run.png"), full_page=True)

            # A run waiting on a hook: deliver its payload through the form.
            page.goto(f"{base}/runs/{waiting}")
            expect(page.locator(".waiting-hook")).to_contain_text("approval")
            page.fill("textarea[name=payload]", '{"approved": true, "by": "ana"}')
            page.screenshot(path=str(shots / "05-waiting-run.png"), full_page=True)
            page.click("text=Deliver payload")
            expect(page.locator("#run-status")).to_have_text("completed", timeout=20_000)
            expect(page.locator("#value-result")).to_contain_text('"by": "ana"')
            page.screenshot(path=str(shots / "06-delivered-run.png"), full_page=True)

            # A sleeping run: cancel it.
            page.goto(f"{base}/runs/{sleeping}")
            expect(page.locator(".picture svg .bar-sleep")).to_have_count(1)
            page.fill("input[name=reason]", "not needed")
            page.click("#cancel")
            expect(page.locator("#run-status")).to_have_text("cancelled", timeout=20_000)
            page.screenshot(path=str(shots / "07-cancelled-run.png"), full_page=True)

            # The counts follow new runs without a reload (the page polls the API).
            page.goto(f"{base}/runs")
            completed = page.locator("[data-count=completed]")
            expect(completed).to_have_text(re.compile(r"^\d+$"))  # "…" until the first poll
            done = int(completed.inner_text())
            # In a thread: Playwright's sync API runs an event loop in this one.
            with ThreadPoolExecutor(1) as aside:
                aside.submit(create_unleased_run, db, "dash_greet", "later").result()
            expect(page.locator("[data-count=completed]")).to_have_text(
                str(done + 1), timeout=15_000
            )
            expect(page.locator("tbody tr")).to_have_count(4)  # the list itself is not live

            # Filtered by a workflow, the live counts are that workflow's.
            page.goto(f"{base}/runs?workflow=dash_fragile")
            expect(page.locator("#counts")).to_contain_text("every run of dash_fragile")
            expect(page.locator("[data-count=completed]")).to_have_text("1")
            expect(page.locator("[data-count=total]")).to_have_text("1")

            page.goto(f"{base}/workflows")
            expect(page.locator("table.workflows")).to_contain_text("dash_greet")
            # Each workflow's runs per status, filled in by the page's script (dash_greet: the
            # script tag's run and "later").
            greet = page.locator("td[data-workflow=dash_greet]")
            expect(greet.locator("[data-count=completed]")).to_have_text("completed 2")
            expect(page.locator("td[data-workflow=dash_big] [data-total]")).to_have_text("0")
            page.screenshot(path=str(shots / "08-workflows.png"), full_page=True)

            # A schedule: run it now (a worker runs it), then pause it.
            page.click("nav >> text=Schedules")
            row = page.locator("tr[data-schedule=nightly]")
            expect(row).to_contain_text("Europe/Prague")
            expect(row.locator(".status")).to_have_text("active")
            row.locator("button.trigger").click()
            expect(page.locator(".notice")).to_contain_text("Started a run of the schedule")
            expect(page.locator("#run-status")).to_have_text("completed", timeout=20_000)
            triggered = page.url.rsplit("/", 1)[-1].split("?")[0]
            page.goto(f"{base}/schedules")
            expect(row.locator(f"a[href='/runs/{triggered}']")).to_be_visible()
            row.locator("button.pause").click()
            expect(page.locator(".notice")).to_contain_text("Schedule paused")
            expect(row.locator(".status")).to_have_text("paused")
            expect(row.locator("button.resume")).to_be_visible()
            page.screenshot(path=str(shots / "09-schedules.png"), full_page=True)
            row.locator("a[href='/runs?schedule=nightly']").click()
            expect(page.locator("tbody tr")).to_have_count(1)
            expect(page.locator("tbody")).to_contain_text(triggered)

            # Backfill two past days: their two slots start, a worker runs them.
            page.goto(f"{base}/schedules")
            row.locator("details.backfill summary").click()
            now = datetime.now(UTC)
            since, until = now - timedelta(days=3), now - timedelta(days=1)
            row.locator("input[name=start]").fill(since.strftime("%Y-%m-%dT%H:%M"))
            row.locator("input[name=end]").fill(until.strftime("%Y-%m-%dT%H:%M"))
            page.screenshot(path=str(shots / "10-backfill-form.png"), full_page=True)
            row.locator("button.backfill").click()
            expect(page.locator(".notice")).to_contain_text("Backfilled")
            expect(page.locator("tbody tr")).to_have_count(3)
            page.screenshot(path=str(shots / "11-backfilled-runs.png"), full_page=True)

            # Delete it: the dashboard asks first; then it is gone from the list.
            page.goto(f"{base}/schedules")
            row.locator("a.delete").click()
            expect(page.locator("h1")).to_contain_text("Delete schedule")
            page.screenshot(path=str(shots / "12-delete-schedule.png"), full_page=True)
            page.click("#confirm-delete")
            expect(page.locator(".notice")).to_contain_text("Schedule deleted")
            expect(page.locator("tr[data-schedule=nightly]")).to_have_count(0)
            page.screenshot(path=str(shots / "13-schedule-deleted.png"), full_page=True)

            # A stream run: from its parent's page to its driving run's, its step and signal.
            with ThreadPoolExecutor(1) as aside:  # Playwright's loop runs in this thread
                parent = aside.submit(create_unleased_run, db, "dash_sensor_job", "7").result()
            _wait_for_stream_step(db, "sensors-7", "dash_summer", cursor=1)
            page.goto(f"{base}/runs/{parent}")
            page.click("a.stream-link")
            expect(page.locator("#stream-name")).to_have_text("dash_sensors")
            summer = page.locator("tr[data-step=dash_summer]")
            expect(summer).to_contain_text("waiting")
            expect(summer).to_contain_text("reading")
            expect(page.locator("table.signals tr[data-seq='1']")).to_contain_text('{"value":1}')
            page.screenshot(path=str(shots / "14-stream-run.png"), full_page=True)
        finally:
            browser.close()
    assert dialogs == [], f"a script ran in the page: {dialogs}"
    started = (tmp_path / "dashboard.log").read_text()
    assert "http://127.0.0.1:" in started
    assert "only this machine can reach it; writes allowed with the token" in started
    cancelled = wait_for_run(db, sleeping, lambda r: r.status.is_terminal, 5)
    assert cancelled.cancel_reason == "not needed"
    backfilled = sqlite3.connect(db).execute(
        "SELECT schedule_slot_at FROM runs WHERE schedule_id = 'nightly' ORDER BY created_at"
    )
    slots = [row[0] for row in backfilled]
    assert len(slots) == 3
    # The two backfilled runs are for 03:17 in Prague of two past days.
    prague = ZoneInfo("Europe/Prague")
    assert [datetime.fromtimestamp(s, prague).strftime("%H:%M") for s in slots[1:]] == [
        "03:17",
        "03:17",
    ]
