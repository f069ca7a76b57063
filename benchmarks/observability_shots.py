"""Screenshots for docs/observability.md: a goal report and the dashboard, from real runs.

Runs a 10-cycle goal and a day of fusion runs against the shipped test server (real HTTP on
loopback), writes ``apex report`` HTML for the goal, serves ``apex ui`` over the store, and has
Debian's headless Chromium (through playwright) photograph both.

    .venv/bin/python benchmarks/observability_shots.py [--out docs]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from apex.fusion import fuse
from apex.goals.runner import Goal
from apex.goals.types import Limits
from apex.goals.verify import VerifierSpec
from apex.report import goal_report, render_html
from apex.store import EvidenceStore
from apex.testing import Fail, Reply, TestServer, roles, workflow_toml
from apex.ui import create_app
from apex.workflow import parse_workflow


async def build(store: EvidenceStore, server: TestServer, folder: Path) -> str:
    """A 10-cycle goal and twelve fusion runs; the goal's id."""
    server.default("m1", Reply("the answer is 42", cost=0.0011, latency=0.05))
    server.default("m2", Reply("the answer is 42", cost=0.0021, latency=0.08))
    server.default("m3", Reply("the answer is 7", cost=0.0006, latency=0.03))
    judge = roles.judge("41", goal_met=False, blocker="needs the source data")
    server.default("judge", lambda body: Reply(judge(body), cost=0.0032, latency=0.06))
    workflow = folder / "lab.toml"
    workflow.write_text(workflow_toml(server.base_url, settings='category = "research"'))
    goal = Goal(
        "Find the answer to the question of life",
        workflow=str(workflow),
        store=store,
        limits=Limits(max_cycles=10),
        verifier=VerifierSpec(kind="regex", value="42"),
        blocked_after=11,
    )
    await goal.run()
    wf = parse_workflow(workflow.read_text(), str(workflow))
    server.script("m2", Fail(500), Fail(500))
    for i in range(12):
        await fuse("Which option?", workflow=wf, category="math" if i % 2 else "code", store=store)
    return goal.id


def main(out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Debian's chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, TestServer() as server:
        folder = Path(tmp)
        db = f"sqlite:///{folder / 'shots.db'}"
        store = EvidenceStore(db)
        goal_id = asyncio.run(build(store, server, folder))
        report = folder / "report.html"
        report.write_text(render_html(goal_report(store, goal_id)), encoding="utf-8")
        config = uvicorn.Config(create_app(db), host="127.0.0.1", port=8766, log_level="warning")
        ui = uvicorn.Server(config)
        threading.Thread(target=ui.run, daemon=True).start()
        while not ui.started:
            time.sleep(0.05)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            page.goto(report.as_uri())
            page.screenshot(path=str(out / "report-goal.png"), full_page=False)
            page.goto(f"http://127.0.0.1:8766/goals/{goal_id}")
            page.screenshot(path=str(out / "dashboard-goal.png"), full_page=False)
            page.goto("http://127.0.0.1:8766/evidence")
            page.screenshot(path=str(out / "dashboard-evidence.png"), full_page=False)
            browser.close()
        ui.should_exit = True
        store.close()
    print(f"wrote {out}/report-goal.png, dashboard-goal.png, dashboard-evidence.png")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    main(parser.parse_args().out)
