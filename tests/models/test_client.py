"""The model client over real HTTP on loopback: retries, typed failures, limits, cost."""

from __future__ import annotations

import asyncio
import time

import pytest

from apex.errors import CallTimeout, HTTPStatusFailure, RateLimited
from apex.models import ChatRequest, ModelClient, RetryPolicy, parse_retry_after
from apex.testing import Empty, Fail, Hang, Malformed, Refuse, Reply, TestServer
from apex.workflow import Price, Workflow

FAST = RetryPolicy(max_retries=2, backoff_s=0.01, max_backoff_s=0.02)


def client(lab: Workflow) -> ModelClient:
    return ModelClient(lab.client_settings, retry=FAST)


async def test_answer_usage_and_reported_cost(server: TestServer, lab: Workflow) -> None:
    server.script("m1", Reply("Paris", prompt_tokens=12, completion_tokens=3, cost=0.0042))
    async with client(lab) as c:
        result = await c.chat("lab:m1", ChatRequest.of("capital of France?"))
    assert result.ok and result.text == "Paris"
    assert result.usage.total_tokens == 15
    assert result.cost_usd == pytest.approx(0.0042)
    assert result.attempts == 1


async def test_cost_from_declared_price_else_null(server: TestServer, lab: Workflow) -> None:
    server.script("m1", Reply("a", prompt_tokens=1_000_000, completion_tokens=500_000))
    server.script("m2", Reply("b"))
    priced = lab.model_copy(
        update={"prices": {"lab:m1": Price(input_per_mtok=1, output_per_mtok=4)}}
    )
    async with ModelClient(priced.client_settings, retry=FAST) as c:
        first = await c.chat("lab:m1", ChatRequest.of("q"))
        second = await c.chat("lab:m2", ChatRequest.of("q"))
    assert first.cost_usd == pytest.approx(3.0)
    assert second.cost_usd is None  # never invented


async def test_429_retry_after_is_honoured(server: TestServer, lab: Workflow) -> None:
    server.script("m1", Fail(429, retry_after=0.6), Reply("ok"))
    async with client(lab) as c:
        started = time.monotonic()
        result = await c.chat("lab:m1", ChatRequest.of("q"))
        waited = time.monotonic() - started
    assert result.ok and result.attempts == 2
    first, second = server.requests_for("m1")
    assert second.started - first.finished >= 0.55  # jittered backoff alone is <= 0.02 s
    assert waited >= 0.55


async def test_429_persisting_becomes_rate_limited(server: TestServer, lab: Workflow) -> None:
    server.default("m1", Fail(429, retry_after=0))
    async with client(lab) as c:
        result = await c.chat("lab:m1", ChatRequest.of("q"))
    assert result.failure is not None and result.failure.kind == "rate_limited"
    assert result.attempts == 3 and len(server.requests_for("m1")) == 3
    with pytest.raises(RateLimited):
        result.raise_for_failure()


async def test_5xx_is_retried_then_succeeds(server: TestServer, lab: Workflow) -> None:
    server.script("m1", Fail(500), Fail(503), Reply("recovered"))
    async with client(lab) as c:
        result = await c.chat("lab:m1", ChatRequest.of("q"))
    assert result.text == "recovered" and result.attempts == 3


async def test_4xx_is_not_retried(server: TestServer, lab: Workflow) -> None:
    server.script("m1", Fail(400), Reply("never"))
    async with client(lab) as c:
        result = await c.chat("lab:m1", ChatRequest.of("q"))
    assert result.failure is not None and result.failure.kind == "bad_request"
    assert result.failure.status == 400 and result.attempts == 1
    with pytest.raises(HTTPStatusFailure):
        result.raise_for_failure()


async def test_timeout(server: TestServer, lab: Workflow) -> None:
    server.script("m1", Hang(3.0))
    async with client(lab) as c:
        started = time.monotonic()
        result = await c.chat("lab:m1", ChatRequest.of("q", timeout_s=0.3))
    assert result.failure is not None and result.failure.kind == "timeout"
    assert time.monotonic() - started < 1.5
    with pytest.raises(CallTimeout):
        result.raise_for_failure()


@pytest.mark.parametrize(
    ("behaviour", "kind"),
    [
        (Malformed(), "malformed_response"),
        (Empty(), "empty"),
        (Refuse(), "refusal"),
        (Malformed('{"choices": []}'), "malformed_response"),
    ],
)
async def test_bad_bodies_are_typed_failures(
    server: TestServer, lab: Workflow, behaviour: object, kind: str
) -> None:
    server.script("m1", behaviour)
    async with client(lab) as c:
        result = await c.chat("lab:m1", ChatRequest.of("q"))
    assert result.failure is not None and result.failure.kind == kind
    assert result.attempts == 1


async def test_connection_error_is_typed(lab: Workflow) -> None:
    dead = lab.model_copy(deep=True)
    dead.providers["lab"].base_url = "http://127.0.0.1:9/v1"
    async with ModelClient(dead.client_settings, retry=FAST) as c:
        result = await c.chat("lab:m1", ChatRequest.of("q"))
    assert result.failure is not None and result.failure.kind == "connection"
    assert "127.0.0.1:9" in result.failure.message and result.attempts == 3


async def test_concurrency_limit_is_respected(server: TestServer, lab: Workflow) -> None:
    limited = lab.model_copy(deep=True)
    limited.providers["lab"].concurrency = 2
    server.default("m1", Reply("x", latency=0.2))
    async with ModelClient(limited.client_settings, retry=FAST) as c:
        results = await asyncio.gather(*(c.chat("lab:m1", ChatRequest.of("q")) for _ in range(6)))
    assert all(r.ok for r in results)
    assert server.max_in_flight("m1") == 2


async def test_calls_run_in_parallel(server: TestServer, lab: Workflow) -> None:
    server.default("m1", Reply("x", latency=0.5))
    async with client(lab) as c:
        started = time.monotonic()
        await asyncio.gather(*(c.chat("lab:m1", ChatRequest.of("q")) for _ in range(4)))
    assert time.monotonic() - started < 1.0
    assert server.max_in_flight("m1") == 4


def test_parse_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    assert 0 <= (parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") or 0) < 1
