"""The dashboard's pages over HTTP: what each shows, read-only, nothing from another host."""

from __future__ import annotations

from fastapi.testclient import TestClient

from apex.ui import create_app
from tests.report.conftest import GoalStore
from tests.report.html_reader import read_page


def test_every_page_of_a_store_with_a_goal_and_its_runs(goal_db: GoalStore) -> None:
    status = goal_db.status
    with TestClient(create_app(f"sqlite:///{goal_db.path}")) as client:
        home = client.get("/")
        assert home.status_code == 200 and status.spec.id in home.text
        assert "default-src 'self'" in home.headers["content-security-policy"]
        page = client.get(f"/goals/{status.spec.id}")
        assert page.status_code == 200
        assert '<span id="cycles">10</span>' in page.text and "<svg" in page.text
        assert status.best_answer.splitlines()[0] in page.text
        fragment = client.get(f"/goals/{status.spec.id}?fragment=1")
        assert fragment.text.lstrip().startswith("<p>State:") and "<html" not in fragment.text
        runs = client.get("/runs")
        assert all(c.run_id in runs.text for c in status.cycles)
        run = client.get(f"/runs/{status.cycles[0].run_id}")
        assert run.status_code == 200 and "lab:judge" in run.text
        evidence = client.get("/evidence")
        assert evidence.status_code == 200 and "lab:m1" in evidence.text and "<svg" in evidence.text
        assert client.get("/goals/nope").status_code == 404
        assert client.get("/runs/nope").status_code == 404
        assert client.post("/").status_code == 405  # read-only
        for text in (home.text, page.text, runs.text, run.text, evidence.text):
            loads = read_page(text).external  # every src and href
            assert [u for u in loads if not u.startswith(("/", "#", "data:"))] == []
