"""Bearer keys (401 without one, compared in constant time, never logged), the loopback rule,
and a graceful shutdown on SIGTERM: in-flight requests finish, new ones get 503."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from apex.cli.main import app
from apex.server.config import SERVER_KEYS_ENV
from apex.server.guard import Door
from apex.testing import Reply
from tests.server.conftest import Lab, Serve, wait_until

QUESTION = [{"role": "user", "content": "What is the capital of Peru?"}]
KEYS = ("alpha-secret-key-1", "beta-secret-key-2")


@pytest.fixture
def keyed(tmp_path: Path, served_dir: Path) -> Iterator[Serve]:
    server = Serve(
        tmp_path,
        served_dir,
        f"sqlite:///{tmp_path / 'keyed.db'}",
        "--log-level",
        "info",
        "--access-log",
        env={SERVER_KEYS_ENV: ",".join(KEYS)},
    )
    yield server
    server.stop()


def test_401_without_the_right_key(keyed: Serve, own: Lab) -> None:
    model = own.workflow()
    for key in ("", "wrong-key", f"{KEYS[0]}x"):
        with (
            openai.OpenAI(base_url=keyed.url, api_key=key or "none", max_retries=0) as sdk,
            pytest.raises(openai.AuthenticationError) as refused,
        ):
            sdk.chat.completions.create(model=model, messages=QUESTION)
        assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    bare = httpx.get(f"{keyed.url}/models")
    assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
    assert not own.requests("judge"), "no model was called for an unauthenticated request"
    for key in KEYS:
        with openai.OpenAI(base_url=keyed.url, api_key=key, max_retries=0) as sdk:
            completion = sdk.chat.completions.create(model=model, messages=QUESTION)
            assert completion.choices[0].message.content == "fused"
    assert keyed.health()["status"] == "ok"  # health and docs need no key
    assert httpx.get(f"{keyed.root}/docs").status_code == 200
    keyed.stop()
    printed = keyed.out.read_text() + keyed.err.read_text()
    assert "POST /v1/chat/completions" in printed  # the access log was on
    assert "2 bearer key(s)" in printed
    for key in KEYS:
        assert key not in printed


def test_a_key_is_compared_in_constant_time_over_every_key() -> None:
    door = Door([], 1)
    assert not door.auth and not door.authorized("Bearer anything")
    door = Door([SecretStr(k) for k in KEYS], 1)
    assert door.authorized(f"Bearer {KEYS[1]}") and door.authorized(f"bearer {KEYS[0]}")
    assert not door.authorized(KEYS[0]) and not door.authorized(f"Basic {KEYS[0]}")
    assert not door.authorized(None) and not door.authorized("Bearer ")


def test_a_non_loopback_host_needs_keys_or_insecure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SERVER_KEYS_ENV, raising=False)
    refused = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "0"])  # noqa: S104
    assert refused.exit_code == 1
    assert f"is not loopback and {SERVER_KEYS_ENV} is unset" in refused.output


def test_sigterm_finishes_in_flight_requests_and_refuses_new_ones(
    tmp_path: Path, served_dir: Path, own: Lab
) -> None:
    model = own.workflow()
    for name in ("m1", "m2", "m3"):
        own.reply(name, Reply("Lima", latency=1.5))
    server = Serve(tmp_path, served_dir, f"sqlite:///{tmp_path / 'term.db'}", "--grace-s", "20")
    body = {"model": model, "messages": QUESTION}
    answered: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: answered.append(
            httpx.post(f"{server.url}/chat/completions", json=body, timeout=30)
        )
    )
    slow.start()
    wait_until(lambda: server.health()["cycles_in_flight"] == 1, "the cycle in flight")
    server.proc.terminate()
    refused = None

    def draining() -> bool:
        nonlocal refused
        refused = httpx.post(f"{server.url}/chat/completions", json=body, timeout=30)
        return refused.status_code == 503

    wait_until(draining, "503 while draining", 5)
    assert refused is not None and refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "shutting_down"
    slow.join(30)
    assert [r.status_code for r in answered] == [200]
    assert answered[0].json()["choices"][0]["message"]["content"] == "fused"
    assert server.proc.wait(20) == 0, server.diagnostics()
