"""A real headless Chromium (Debian's package, installed here when missing) and the dashboard
served by uvicorn on loopback.

Without Chromium (no package and no way to install it) the browser tests are skipped with the
reason; the dashboard's pages are still checked over HTTP by test_pages.py.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from apex.ui import create_app
from apex.ui.app import POLL_MS
from tests.report.conftest import goal_db, week_db

__all__ = ["goal_db", "week_db"]

CHROMIUM_NAMES = ("chromium", "chromium-browser")
INSTALL_TIMEOUT_S = 600


def find_chromium() -> str | None:
    return next((p for n in CHROMIUM_NAMES if (p := shutil.which(n))), None)


@pytest.fixture(scope="session")
def chromium_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Debian's Chromium: found on PATH, else installed with apt-get (as root), else skipped."""
    found = find_chromium()
    if found is None and shutil.which("apt-get") and _is_root():
        # one xdist worker installs at a time (the workers share the base temp's parent)
        lock = tmp_path_factory.getbasetemp().parent / "chromium-install.lock"
        with lock.open("w") as handle:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
            for step in (["update"], ["install", "-y", "--no-install-recommends", "chromium"]):
                if find_chromium() is not None:
                    break
                subprocess.run(
                    ["apt-get", *step], capture_output=True, timeout=INSTALL_TIMEOUT_S, check=False
                )
        found = find_chromium()
    if found is None:
        pytest.skip("Chromium is not installed and `apt-get install chromium` was not possible")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package (a dev dependency) is not installed")
    return found


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


@dataclass
class Served:
    url: str
    server: uvicorn.Server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(db: str, poll_ms: int = POLL_MS) -> Iterator[Served]:
    """The dashboard over ``db`` in a uvicorn thread, until the test ends."""
    port = free_port()
    app = create_app(db, poll_ms=poll_ms)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
