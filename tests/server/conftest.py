"""``apex serve`` as a real child process against the loopback test server.

The test server runs in the test process (it records every request's raw bytes); each
``apex serve`` is started with ``--port 0`` and found by the address it prints once it serves.
Tests share one server per worker (``main_server``) and keep apart by model names: each writes
its own workflow file into the served directory (the server reads a new file when first asked
for it), with models named after the test.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from apex.faults import KILL_AT_ENV
from apex.models.providers import BLOCK_REMOTE_ENV
from apex.server.config import SERVER_KEYS_ENV
from apex.testing import TestServer, roles, workflow_toml

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
POLL_S = 0.02
KEEPALIVE_S = 0.2
DEADLINE_S = 4.0
MAX_CONCURRENT = 4
MAX_BODY_BYTES = 65_536
MAIN_FLAGS = (
    "--keepalive-s",
    str(KEEPALIVE_S),
    "--deadline-s",
    str(DEADLINE_S),
    "--max-concurrent",
    str(MAX_CONCURRENT),
    "--max-body-bytes",
    str(MAX_BODY_BYTES),
)
_ADDRESS = re.compile(r"apex serve: (http://\S+)/v1")


def apex_command(*args: str) -> list[str]:
    """``apex ARGS`` in this interpreter."""
    return [sys.executable, "-m", "apex.cli.main", *args]


class Serve:
    """One ``apex serve`` child process; ``url`` is its base URL (``.../v1``)."""

    def __init__(
        self,
        home: Path,
        workflows: Path,
        db: str,
        *flags: str,
        env: dict[str, str] | None = None,
        name: str = "serve",
    ) -> None:
        self.home = home
        self.db = db
        self.out = home / f"{name}.out"
        self.err = home / f"{name}.err"
        command = apex_command(
            "serve", "--port", "0", "--workflows", str(workflows), "--db", db, *flags
        )
        child = {
            k: v
            for k, v in os.environ.items()
            if k not in ("APEX_DB", SERVER_KEYS_ENV, KILL_AT_ENV)
        }
        child |= {"APEX_HOME": str(home / "apex-home"), BLOCK_REMOTE_ENV: "1"} | (env or {})
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(command, stdout=out, stderr=err, env=child)
        self.root = self._wait_address()
        self.url = f"{self.root}/v1"

    def diagnostics(self) -> str:
        """What the process printed, for failure messages."""
        return f"stdout:\n{self.out.read_text()}\nstderr:\n{self.err.read_text()}"

    def _wait_address(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            found = _ADDRESS.search(self.out.read_text())
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                pytest.fail(f"apex serve exited with {self.proc.returncode}\n{self.diagnostics()}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"apex serve did not start in time\n{self.diagnostics()}")
            time.sleep(POLL_S)

    def health(self) -> dict[str, Any]:
        """``GET /health``."""
        data: dict[str, Any] = httpx.get(f"{self.root}/health", timeout=5).json()
        return data

    def stop(self) -> int:
        """SIGTERM, then wait; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"apex serve did not stop on SIGTERM\n{self.diagnostics()}")

    def kill(self) -> None:
        """SIGKILL, and reap the process (a zombie still looks alive to a lease check)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Poll ``condition`` until it holds (bounded)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(POLL_S)


@pytest.fixture(scope="session")
def provider() -> Iterator[TestServer]:
    """The test server every served workflow points at (shared; tests use their own models)."""
    with TestServer() as server:
        yield server


@pytest.fixture(scope="session")
def served_dir(tmp_path_factory: pytest.TempPathFactory, provider: TestServer) -> Path:
    """The ``--workflows`` directory, with a basic ``lab`` workflow."""
    directory = tmp_path_factory.mktemp("workflows")
    (directory / "lab.toml").write_text(workflow_toml(provider.base_url, critics=("critic",)))
    provider.default("critic", roles.critic()).default("judge", roles.judge("fused"))
    return directory


@pytest.fixture(scope="session")
def main_server(tmp_path_factory: pytest.TempPathFactory, served_dir: Path) -> Iterator[Serve]:
    """One ``apex serve`` for the worker: no keys, short keep-alives, deadline and limits."""
    home = tmp_path_factory.mktemp("serve")
    server = Serve(home, served_dir, f"sqlite:///{home / 'serve.db'}", *MAIN_FLAGS)
    yield server
    server.stop()


class Lab:
    """A test's own models on the shared test server, and its workflow file."""

    def __init__(self, provider: TestServer, directory: Path) -> None:
        self.provider = provider
        self.directory = directory
        self.tag = f"t{uuid.uuid4().hex[:8]}"

    def model(self, name: str) -> str:
        """The test server's name of this test's model ``name``."""
        return f"{self.tag}-{name}"

    def spec(self, name: str) -> str:
        """``lab:<tag>-<name>``."""
        return f"lab:{self.model(name)}"

    def workflow(
        self,
        panel: Sequence[str] = ("m1", "m2", "m3"),
        *,
        critics: Sequence[str] = (),
        judge: str | None = "judge",
        settings: str = "max_retries = 0",
        answer: str = "fused",
    ) -> str:
        """Write the workflow (named after the test) and script its critics and judge; the
        ``model`` to ask for (``apex/<tag>``)."""
        text = workflow_toml(
            self.provider.base_url,
            [self.model(m) for m in panel],
            critics=[self.model(c) for c in critics],
            judge=self.model(judge) if judge else None,
            name=self.tag,
            settings=settings,
        )
        (self.directory / f"{self.tag}.toml").write_text(text)
        for critic in critics:
            self.provider.default(self.model(critic), roles.critic())
        if judge:
            self.provider.default(self.model(judge), roles.judge(answer))
        return f"apex/{self.tag}"

    def requests(self, name: str) -> list[Any]:
        """Requests the test server received for this test's model ``name``."""
        return self.provider.requests_for(self.model(name))

    def reply(self, name: str, *behaviours: Any) -> None:
        """Queue behaviours for model ``name``."""
        self.provider.script(self.model(name), *behaviours)

    def default(self, name: str, behaviour: Any) -> None:
        """What model ``name`` does by default."""
        self.provider.default(self.model(name), behaviour)


@pytest.fixture
def own(provider: TestServer, served_dir: Path) -> Lab:
    """This test's models and workflow on the shared server."""
    return Lab(provider, served_dir)


@pytest.fixture
def sdk(main_server: Serve) -> Iterator[openai.OpenAI]:
    """The official SDK pointed at the main server (no retries: every status is seen)."""
    with openai.OpenAI(base_url=main_server.url, api_key="unused", max_retries=0) as client:
        yield client
