"""Shared fixtures: remote model requests refused, scripted model servers, a lab workflow.

``inproc`` (no socket, no thread) is for tests that do not check the wire; ``server`` (real HTTP
on loopback) for those that do; ``any_server`` runs a test over both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from apex.models.providers import BLOCK_REMOTE_ENV
from apex.testing import InProcessServer, ScriptedModels, TestServer, workflow_toml
from apex.workflow import Workflow, parse_workflow


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests (the real local model) first, so no worker ends the run alone with one."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _no_remote_requests(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never reach a real provider, and keep their state in a temp dir."""
    monkeypatch.setenv(BLOCK_REMOTE_ENV, "1")
    monkeypatch.setenv("APEX_HOME", str(tmp_path / "apex-home"))
    monkeypatch.delenv("APEX_DB", raising=False)
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def server() -> Iterator[TestServer]:
    """A scriptable OpenAI-compatible server on 127.0.0.1."""
    with TestServer() as srv:
        yield srv


@pytest.fixture
def inproc() -> Iterator[InProcessServer]:
    """The same scripted models served in-process: no socket, no thread."""
    with InProcessServer() as srv:
        yield srv


@pytest.fixture(params=["http", "inproc"])
def any_server(request: pytest.FixtureRequest) -> Iterator[ScriptedModels]:
    """Each scripted server in turn, for tests that must hold over HTTP and in-process alike."""
    with TestServer() if request.param == "http" else InProcessServer() as srv:
        yield srv


def lab_toml(base_url: str, extra: str = "", panel: tuple[str, ...] = ("m1", "m2", "m3")) -> str:
    """A workflow file text using the test server as provider ``lab`` (``extra`` appended)."""
    return workflow_toml(base_url, panel, settings="max_retries = 2\ntimeout_s = 5") + extra


@pytest.fixture
def lab(server: TestServer) -> Workflow:
    """A three-member workflow on the test server."""
    return parse_workflow(lab_toml(server.base_url), "lab.toml")
