"""An API key never survives in part: not across the 200-character cut, not inside an answer.

One provider answers HTTP 500 with the key placed across the cut of its error text; the other's
panel member, critic and judge echo the key (and pieces of it) in their answers. No 8-character
fragment of the key may appear in ``fuse --json``, ``fuse``'s table, ``ask``, ``evidence``, the
logs, the database file or anything else under ``APEX_HOME``.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import redirect_stderr
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from apex.cli.main import app
from apex.logging import configure_logging
from apex.models.client import ERROR_TEXT_CHARS
from apex.redact import MASK, MIN_FRAGMENT, redact, redact_known, register_secret
from apex.testing import Reply, TestServer, roles

KEY = "sk-TEST-Zq9XvLmN3pRtY7uWkJ2hGfD5sA8eB1cV4xQ6"
runner = CliRunner()


def fragments(text: str, key: str = KEY) -> list[str]:
    """Every run of 8 characters of ``key`` found in ``text``."""
    runs = {key[i : i + MIN_FRAGMENT] for i in range(len(key) - MIN_FRAGMENT + 1)}
    return sorted(r for r in runs if r in text)


class _Leaky(BaseHTTPRequestHandler):
    """Answers every chat request 500, its error message holding the key across the cut."""

    seen_keys: list[str] = []  # noqa: RUF012 - filled by the serving thread, read by the test

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the access log."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen_keys.append(self.headers.get("Authorization", ""))
        message = "x" * (ERROR_TEXT_CHARS - 10) + KEY + " was rejected"
        body = json.dumps({"error": {"message": message}}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def leaky() -> Iterator[str]:
    """A loopback provider that leaks the key in its error text; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Leaky)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def workflow(tmp_path: Path, lab: str, leak: str) -> str:
    path = tmp_path / "keys.toml"
    path.write_text(
        'name = "keys"\nmax_retries = 0\ntimeout_s = 5\n'
        f'[providers.lab]\nbase_url = "{lab}"\napi_key_env = "LAB_KEY"\n'
        f'[providers.leak]\nbase_url = "{leak}"\napi_key_env = "LAB_KEY"\n'
        '[[panel]]\nmodel = "lab:m1"\n[[panel]]\nmodel = "lab:m2"\n[[panel]]\nmodel = "leak:m3"\n'
        '[[critics]]\nmodel = "lab:critic"\n[judge]\nmodel = "lab:judge"\n'
    )
    return str(path)


def test_redaction_comes_before_the_cut_and_masks_fragments() -> None:
    register_secret(KEY)
    cut = ("x" * (ERROR_TEXT_CHARS - 10) + KEY)[:ERROR_TEXT_CHARS]  # the key's first 10 chars
    assert fragments(cut) and not fragments(redact(cut)) and not fragments(redact_known(cut))
    assert redact_known(f"key {KEY[5:17]} and {KEY[-9:]}") == f"key {MASK} and {MASK}"
    assert redact_known(f"short {KEY[:7]} stays") == f"short {KEY[:7]} stays"
    assert redact_known("nothing to hide") == "nothing to hide"


def test_no_fragment_of_a_key_in_any_output_log_or_row(
    server: TestServer, leaky: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_KEY", KEY)
    echoed = f"Paris. Debug: your key is {KEY}, its prefix {KEY[:10]}, its end {KEY[-12:]}."
    server.default("m1", Reply(echoed))
    server.default("m2", Reply("Paris."))
    server.default("critic", roles.critic(detail=f"mentions {KEY[4:30]}"))
    server.default("judge", roles.judge(f"Paris (and the key {KEY})"))
    wf = workflow(tmp_path, server.base_url, leaky)
    db = tmp_path / "keys.db"
    logs = io.StringIO()
    results = []
    try:
        with redirect_stderr(logs):
            configure_logging("DEBUG")
            for args in (
                ["fuse", "Capital of France?", "-w", wf, "--db", str(db), "--json"],
                ["fuse", "Capital of France?", "-w", wf, "--db", str(db)],
                ["ask", "leak:m3", "hi", "-w", wf, "--json"],
                ["ask", "leak:m3", "hi", "-w", wf],
                ["ask", "lab:m1", "hi", "-w", wf],
                ["evidence", "--db", str(db), "--json"],
            ):
                results.append(runner.invoke(app, args))
    finally:
        structlog.reset_defaults()
        configure_logging()
    assert _Leaky.seen_keys and all(KEY in h for h in _Leaky.seen_keys)  # the key was used
    assert results[0].exit_code == 0, results[0].output
    fused = json.loads(results[0].stdout)
    failed = next(c for c in fused["candidates"] if c["model"] == "leak:m3")
    assert "HTTP 500" in failed["error"] and MASK in failed["error"]
    assert MASK in fused["answer"] and fused["answer"].startswith("Paris")
    assert "model_call" in logs.getvalue() + "".join(r.stderr for r in results)  # logs were on
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != Path(wf))
    outputs = [r.stdout + r.stderr for r in results]
    everything = "\n".join([*outputs, logs.getvalue(), stored.decode("latin-1")])
    assert "Paris" in everything and fragments(everything) == []
