"""The dashboard in a real headless Chromium: every page of a store with a goal and its runs
loads with no console error and nothing from another host, and a goal's page follows the goal
while it runs (without reloading)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from apex.goals.runner import Goal
from apex.goals.types import Limits
from apex.store import EvidenceStore
from apex.testing import Reply, TestServer, roles, workflow_toml
from apex.ui.app import POLL_MS
from tests.report.conftest import GoalStore
from tests.ui.conftest import serve

LIVE_POLL_MS = 250
"""The live page's poll in the running-goal test: every cycle (about half a second) is seen."""
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Watched:
    """A browser page with every console error, page error and outside request recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.navigations = 0
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        page.on("request", self._request)
        page.on("framenavigated", self._navigated)

    def _request(self, request: Any) -> None:
        host = urlsplit(request.url).hostname
        if request.url.startswith(("http:", "https:")) and host != "127.0.0.1":
            self.outside.append(request.url)

    def _navigated(self, frame: Any) -> None:
        if frame == self.page.main_frame:
            self.navigations += 1


@pytest.fixture
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


def test_every_page_loads_without_a_console_error(goal_db: GoalStore, browser: Any) -> None:
    status = goal_db.status
    with serve(f"sqlite:///{goal_db.path}") as served:
        watched = Watched(browser.new_page())
        page = watched.page
        pages = {
            "/": "Goals",
            f"/goals/{status.spec.id}": f"Goal {status.spec.id}",
            "/runs": "Runs",
            f"/runs/{status.cycles[-1].run_id}": f"Run {status.cycles[-1].run_id}",
            "/evidence": "Evidence",
        }
        for path, heading in pages.items():
            response = page.goto(served.url + path)
            assert response is not None and response.status == 200, path
            assert page.locator("h1").inner_text().startswith(heading)
        # the links lead where they say: goals -> goal -> a cycle's run
        page.goto(served.url + "/")
        page.click(f"a[href='/goals/{status.spec.id}']")
        assert page.locator("#cycles").inner_text() == "10"
        assert page.locator("figure.plot svg").count() == 3
        page.click(f"a[href='/runs/{status.cycles[0].run_id}']")
        assert page.locator("h1").inner_text() == f"Run {status.cycles[0].run_id}"
        page.goto(served.url + f"/goals/{status.spec.id}")
        page.wait_for_timeout(POLL_MS * 2)  # the live poll runs, quietly
        assert watched.errors == [] and watched.outside == []


def test_a_goal_page_updates_while_the_goal_runs(tmp_path: Path, browser: Any) -> None:
    with TestServer() as models:
        for name in ("m1", "m2", "m3"):
            models.default(name, Reply("the answer is 41", latency=0.4))
        models.default("judge", roles.judge("41", goal_met=False))
        workflow = tmp_path / "goal.toml"
        workflow.write_text(workflow_toml(models.base_url))
        db = f"sqlite:///{tmp_path / 'live.db'}"
        store = EvidenceStore(db)
        goal = Goal("Keep going", workflow=str(workflow), store=store, limits=Limits(max_cycles=4))
        runner = threading.Thread(target=lambda: asyncio.run(goal.run()), daemon=True)
        with serve(db, poll_ms=LIVE_POLL_MS) as served:
            runner.start()
            deadline = time.monotonic() + 10
            watched = Watched(browser.new_page())
            page = watched.page
            while True:  # the goal row exists as soon as run() starts
                response = page.goto(f"{served.url}/goals/{goal.id}")
                if response is not None and response.status == 200:
                    break
                assert time.monotonic() < deadline
                time.sleep(0.1)
            watched.errors.clear()  # the 404s before the goal existed
            seen = [int(page.locator("#cycles").inner_text())]
            assert page.locator("#state").inner_text() == "active"
            while page.locator("#state").inner_text() == "active":
                assert time.monotonic() < deadline + 30, "the goal did not finish"
                page.wait_for_timeout(200)
                seen.append(int(page.locator("#cycles").inner_text()))
            page.wait_for_timeout(LIVE_POLL_MS * 3)
            seen.append(int(page.locator("#cycles").inner_text()))
            runner.join(timeout=30)
            assert page.locator("#state").inner_text() == "budget_limited"
            assert seen[0] < 4 and seen[-1] == 4 and seen == sorted(seen)
            assert len(set(seen)) >= 3  # it moved cycle by cycle
            assert watched.navigations == 1  # updated in place, never reloaded
            assert watched.errors == [] and watched.outside == []
        store.close()
