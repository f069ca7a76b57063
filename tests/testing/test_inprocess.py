"""The in-process double itself: the TestServer's behaviours, bytes and timing, without a socket."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import httpx
import pytest

from apex.errors import ConfigError
from apex.fusion import fuse
from apex.models import ChatRequest, ChatResult, ModelClient, RetryPolicy
from apex.models.providers import resolve_provider
from apex.models.types import Message
from apex.testing import (
    Empty,
    Fail,
    FunctionModel,
    Hang,
    InProcessServer,
    Malformed,
    Refuse,
    Reply,
    ScriptedModels,
    TestServer,
    roles,
    workflow_toml,
)
from apex.workflow import Workflow, parse_workflow

FAST = RetryPolicy(max_retries=2, backoff_s=0.01, max_backoff_s=0.02)


def lab(base_url: str, retries: int = 2) -> Workflow:
    settings = f"max_retries = {retries}\ntimeout_s = 5"
    return parse_workflow(workflow_toml(base_url, settings=settings), "lab.toml")


async def chat(server: ScriptedModels, request: ChatRequest, spec: str = "lab:m1") -> ChatResult:
    async with ModelClient(lab(server.base_url).client_settings, retry=FAST) as client:
        return await client.chat(spec, request)


def comparable(result: ChatResult, server: ScriptedModels) -> dict[str, Any]:
    """A result without what differs between servers: its wall times (the call's, and its wait
    for a slot, which rounds to 0.001 s instead of 0.0 on a loaded machine) and the base URL."""
    data = json.dumps(result.model_dump(exclude={"latency_s", "queue_s"}))
    return dict(json.loads(data.replace(server.base_url, "BASE_URL")))


BEHAVIOURS: list[Any] = [
    Reply("Paris", prompt_tokens=12, completion_tokens=3, cost=0.0042),
    "plain text",
    lambda body: Reply(f"saw {body['messages'][-1]['content']}"),
    lambda body: Fail(400),
    Fail(404),
    Fail(503),
    Fail(429, retry_after=0),
    Malformed(),
    Malformed('{"choices": []}'),
    Empty(),
    Refuse(),
]


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
async def test_every_behaviour_ends_as_over_http(behaviour: Any) -> None:
    request = ChatRequest.of("capital of France?")
    with TestServer() as http, InProcessServer() as inproc:
        for srv in (http, inproc):
            srv.default("m1", behaviour)
        over_http, in_process = await chat(http, request), await chat(inproc, request)
    assert comparable(in_process, inproc) == comparable(over_http, http)
    # the same bytes were sent, parsed into the same body, attempt for attempt
    assert [r.raw for r in inproc.requests] == [r.raw for r in http.requests]
    assert [r.body for r in inproc.requests] == [r.body for r in http.requests]


async def test_queue_then_default_then_fallback(inproc: InProcessServer) -> None:
    inproc.script("m1", Reply("first"), "second").default("m1", "always")
    answers = [(await chat(inproc, ChatRequest.of("q"))).text for _ in range(4)]
    assert answers == ["first", "second", "always", "always"]
    echoed = await chat(inproc, ChatRequest.of("hello there"), spec="lab:m2")
    assert echoed.text == "m2 says: hello there"  # an unscripted model echoes
    with InProcessServer(default="catch-all") as other:
        assert (await chat(other, ChatRequest.of("q"), spec="lab:anything")).text == "catch-all"


async def test_request_is_recorded_with_its_raw_bytes(inproc: InProcessServer) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    inproc.default("m1", Reply('{"a": "x"}', latency=0.05))
    request = ChatRequest(messages=[Message(role="user", content="é?")], json_schema=schema, seed=7)
    result = await chat(inproc, request)
    assert result.parsed == {"a": "x"}
    [record] = inproc.requests_for("m1")
    assert record.model == "m1" and json.loads(record.raw) == record.body
    assert record.body["seed"] == 7 and record.body["response_format"]["type"] == "json_schema"
    assert record.body["messages"] == [{"role": "user", "content": "é?"}]
    assert record.finished - record.started >= 0.05
    assert inproc.requests == [record] and not inproc.requests_for("m2")


async def test_latency_and_timeout_play_in_the_event_loop(inproc: InProcessServer) -> None:
    inproc.script("m1", Reply("slow", latency=0.2), Hang(30))
    started = time.monotonic()
    slow = await chat(inproc, ChatRequest.of("q"))
    assert slow.ok and slow.latency_s >= 0.2
    hung = await chat(inproc, ChatRequest.of("q", timeout_s=0.2))
    assert hung.failure is not None and hung.failure.kind == "timeout"
    assert hung.attempts == 1  # a timeout is not retried
    assert time.monotonic() - started < 1.5
    abandoned = inproc.requests_for("m1")[-1]
    assert 0.15 < abandoned.finished - abandoned.started < 1.0  # cancelled, not slept out
    assert inproc.max_in_flight("m1") == 1


async def test_429_retry_after_through_the_client(inproc: InProcessServer) -> None:
    inproc.script("m1", Fail(429, retry_after=0.3), Reply("ok"))
    result = await chat(inproc, ChatRequest.of("q"))
    assert result.ok and result.text == "ok" and result.attempts == 2
    first, second = inproc.requests_for("m1")
    assert second.started - first.finished >= 0.25  # jittered backoff alone is <= 0.02 s
    inproc.default("m2", Fail(429, retry_after=0))
    limited = await chat(inproc, ChatRequest.of("q"), spec="lab:m2")
    assert limited.failure is not None and limited.failure.kind == "rate_limited"
    assert limited.failure.status == 429 and len(inproc.requests_for("m2")) == 3


async def test_calls_overlap_within_the_provider_limit(inproc: InProcessServer) -> None:
    inproc.default("m1", Reply("x", latency=0.2))
    wf = lab(inproc.base_url)
    async with ModelClient(wf.client_settings, retry=FAST) as client:
        started = time.monotonic()
        results = await asyncio.gather(
            *(client.chat("lab:m1", ChatRequest.of("q")) for _ in range(5))
        )
        assert time.monotonic() - started < 0.6
    assert all(r.ok for r in results) and inproc.max_in_flight("m1") == 5
    limited = wf.model_copy(deep=True)
    limited.providers["lab"].concurrency = 2
    inproc.default("m2", Reply("y", latency=0.05))
    async with ModelClient(limited.client_settings, retry=FAST) as client:
        await asyncio.gather(*(client.chat("lab:m2", ChatRequest.of("q")) for _ in range(6)))
    assert inproc.max_in_flight("m2") == 2


async def test_models_listing_and_other_routes(inproc: InProcessServer) -> None:
    inproc.default("judge", "j").script("m1", "a")
    async with httpx.AsyncClient(transport=inproc.transport) as client:
        listing = await client.get(f"{inproc.base_url}/models")
        not_json = await client.post(f"{inproc.base_url}/chat/completions", content=b"{nope")
        other = await client.delete(f"{inproc.base_url}/chat/completions")
    assert listing.status_code == 200
    assert [m["id"] for m in listing.json()["data"]] == ["judge", "m1"]
    assert not_json.status_code == 400 and not inproc.requests
    assert other.status_code == 501


async def test_a_crashing_function_is_a_failed_call(inproc: InProcessServer) -> None:
    inproc.default("m1", lambda body: 1 / 0)
    result = await chat(inproc, ChatRequest.of("q"))
    assert result.failure is not None and result.failure.kind == "connection"
    assert "ZeroDivisionError" in result.failure.message
    assert inproc.max_in_flight("m1") == 1 and inproc.requests[0].finished > 0


async def test_function_model_answers_every_model() -> None:
    def answer(body: dict[str, Any]) -> Any:
        if body["model"] == "m3":
            return Fail(500)
        return f"{body['model']}: {body['messages'][-1]['content']}"

    with FunctionModel(answer) as model:
        model.script("judge", roles.judge("from the judge"))
        result = await fuse("2+2?", workflow=lab(model.base_url, retries=0))
    assert result.answer == "from the judge"
    texts = {c.model: c.text for c in result.candidates}
    assert texts["lab:m1"] == "m1: 2+2?" and texts["lab:m3"] == ""
    assert len(model.requests_for("m3")) == 1
    assert sorted(model.requests_for("m3")[0].body) == ["max_tokens", "messages", "model"]


async def test_unregistered_on_exit() -> None:
    with InProcessServer() as inproc:
        inproc.default("m1", "hi")
        assert resolve_provider("lab", lab(inproc.base_url).providers).transport is inproc.transport
        client = ModelClient(lab(inproc.base_url).client_settings, retry=FAST)
        assert (await client.chat("lab:m1", ChatRequest.of("q"))).text == "hi"
    assert not inproc.running
    assert resolve_provider("lab", lab(inproc.base_url).providers).transport is None
    # a client made before the exit holds the transport: it can no longer connect
    stale = await client.chat("lab:m1", ChatRequest.of("q"))
    assert stale.failure is not None and stale.failure.kind == "connection"
    assert "not serving" in stale.failure.message and len(inproc.requests) == 1
    await client.aclose()
    # a new client finds no transport: the host is not loopback, so the request is refused
    with pytest.raises(ConfigError, match="not on loopback"):
        await chat(inproc, ChatRequest.of("q"))


async def test_two_servers_do_not_mix() -> None:
    with InProcessServer(default="one") as first, InProcessServer(default="two") as second:
        assert first.host != second.host and first.host.startswith("apex-inproc-")
        answers = [(await chat(s, ChatRequest.of("q"))).text for s in (first, second)]
    assert answers == ["one", "two"]
    assert len(first.requests) == len(second.requests) == 1


def _script_fusion(server: ScriptedModels) -> Workflow:
    for model in ("m1", "m2", "m3"):
        server.default(model, Reply("The answer is (B)", latency=0.01))
    server.default("critic", roles.critic())
    server.default("judge", roles.judge("B"))
    return parse_workflow(
        workflow_toml(server.base_url, critics=("critic",), settings="max_retries = 0"), "t.toml"
    )


async def test_a_fusion_opens_no_socket_and_starts_no_thread(
    inproc: InProcessServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a socket or thread was used")

    with TestServer() as http:  # the check is live: the same fusion over HTTP cannot connect
        http_wf = _script_fusion(http)
        with monkeypatch.context() as patch:
            patch.setattr(socket.socket, "connect", refused)
            patch.setattr(socket.socket, "connect_ex", refused)
            over_http = await fuse("q", workflow=http_wf)
        assert over_http.synthesis_path == "all_panel_failed" and not http.requests
    with monkeypatch.context() as patch:  # undone before the event loop closes (a thread)
        patch.setattr(socket.socket, "__init__", refused)
        patch.setattr(threading.Thread, "start", refused)
        with pytest.raises(AssertionError, match="socket or thread"):
            socket.socket()
        result = await fuse("q", workflow=_script_fusion(inproc))
    assert result.ok and result.synthesis_path == "judge" and result.answer == "B"
    assert len(inproc.requests) == 5 and result.critiques
