"""The read-only dashboard under ``/ui``: served by a server without keys, never by one with
keys (a browser sends no bearer key, so the pages would be open to anyone)."""

from __future__ import annotations

from pathlib import Path

import httpx

from apex.server.config import SERVER_KEYS_ENV
from tests.server.conftest import Lab, Serve

QUESTION = [{"role": "user", "content": "Which city is the capital of Peru?"}]


def test_the_dashboard_shows_a_run_the_server_just_made(main_server: Serve, own: Lab) -> None:
    reply = httpx.post(
        f"{main_server.url}/chat/completions",
        json={"model": own.workflow(), "messages": QUESTION},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    run_id = reply.json()["apex"]["run_id"]
    runs = httpx.get(f"{main_server.root}/ui/runs", timeout=10)
    assert runs.status_code == 200 and runs.headers["content-type"].startswith("text/html")
    assert run_id[:8] in runs.text
    page = httpx.get(f"{main_server.root}/ui/runs/{run_id}", timeout=10)
    answer = reply.json()["choices"][0]["message"]["content"]
    assert page.status_code == 200 and f"<pre>{answer}</pre>" in page.text
    assert httpx.post(f"{main_server.root}/ui/runs", timeout=10).status_code == 405  # read-only


def test_a_server_with_keys_serves_no_dashboard(tmp_path: Path, served_dir: Path) -> None:
    db = f"sqlite:///{tmp_path / 'keyed.db'}"
    keyed = Serve(tmp_path, served_dir, db, env={SERVER_KEYS_ENV: "k-123456789"})
    try:
        assert httpx.get(f"{keyed.root}/ui/", timeout=10).status_code == 404
        assert httpx.get(f"{keyed.root}/ui/runs", timeout=10).status_code == 404
    finally:
        keyed.stop()
