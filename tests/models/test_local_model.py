"""The real embedded model (SmolLM2-135M via llama.cpp), offline, end to end."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from typer.testing import CliRunner

from apex.cli.main import app
from apex.models import ChatRequest, ModelClient, contexts
from apex.models.config import ClientSettings, ProviderConfig
from apex.models.providers import LOCAL_BASE_URL

pytestmark = pytest.mark.slow


async def test_local_model_answers_and_follows_a_schema() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    async with ModelClient() as client:
        plain = await client.chat("local:smollm2", ChatRequest.of("Say hello.", max_tokens=30))
        shaped = await client.chat(
            "local:smollm2",
            ChatRequest.of(
                "Which city is the capital of France?", json_schema=schema, max_tokens=40
            ),
        )
    assert plain.ok and plain.text and plain.usage.completion_tokens
    assert plain.cost_usd == 0.0
    assert shaped.ok and isinstance(shaped.parsed["city"], str)


def test_cli_ask_local_model() -> None:
    result = CliRunner().invoke(app, ["ask", "local:smollm2", "What is the capital of France?"])
    assert result.exit_code == 0, result.output
    answer, stats = result.stdout.split("local:smollm2 ·")[:2]
    assert len(answer.strip()) > 3  # a real generated answer
    assert " tokens" in stats and "cost $0.000000" in stats
    assert "demonstration model" in result.stdout


def test_missing_gguf_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["ask", "local:/nope/model.gguf", "hi"])
    assert result.exit_code == 1
    assert "no such GGUF file" in result.stderr


async def test_a_streamed_local_call_is_heard_as_it_is_written_and_ends_as_a_plain_one() -> None:
    ask = ChatRequest.of("Name three colours.", max_tokens=40)
    heard: list[str] = []
    async with ModelClient() as client:
        streamed = await client.chat("local:smollm2", ask, heard.append)
        plain = await client.chat("local:smollm2", ask)
    assert streamed.ok and streamed.text == plain.text  # the same seed: the same answer
    assert streamed.usage == plain.usage and streamed.finish_reason == plain.finish_reason
    assert len(heard) > 10 and heard[-1] == plain.text
    assert all(b.startswith(a) for a, b in itertools.pairwise(heard))


async def test_a_streamed_local_call_cancelled_stops_its_generation() -> None:
    async with ModelClient() as client:
        writing = asyncio.Event()
        long = ChatRequest.of("Write a long story about a lighthouse.", max_tokens=400)
        task = asyncio.ensure_future(client.chat("local:smollm2", long, lambda _t: writing.set()))
        await writing.wait()  # the generation is under way
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        started = time.perf_counter()
        for _ in range(500):  # polled: the count of generations has no event to wait on
            if not contexts.generating():
                break
            await asyncio.sleep(0.01)
        stopped_after = time.perf_counter() - started
        after = await client.chat("local:smollm2", ChatRequest.of("Say hi.", max_tokens=5))
    # the generation stopped at once: the rest of the 400 tokens (seconds of work) was not
    # written, and the model was free for the next call
    assert stopped_after < 0.5 and after.ok and time.perf_counter() - started < 2.0


async def most_at_once(client: ModelClient, asks: list[ChatRequest]) -> tuple[int, list[Any]]:
    """The most local generations running together while ``asks`` are sent at once."""
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, contexts.generating())
            await asyncio.sleep(0.005)

    watcher = asyncio.ensure_future(watch())
    results = await asyncio.gather(*(client.chat("local:smollm2", a) for a in asks))
    watcher.cancel()
    return peak, results


async def test_a_panel_of_one_local_model_generates_side_by_side() -> None:
    asks = [ChatRequest.of(f"Count to {n}.", max_tokens=40, seed=n) for n in (3, 4, 5)]
    async with ModelClient() as client:
        alone = await client.chat("local:smollm2", asks[0])
        peak, together = await most_at_once(client, asks)
    assert peak == contexts.PARALLEL_GENERATIONS == 3  # three contexts, not one after another
    assert all(r.ok for r in together)
    assert together[0].text == alone.text  # a context of its own changes no answer


async def test_a_local_provider_declared_with_concurrency_one_generates_one_at_a_time() -> None:
    one = ProviderConfig(base_url=LOCAL_BASE_URL, concurrency=1, json_schema=True)
    asks = [ChatRequest.of(f"Count to {n}.", max_tokens=20, seed=n) for n in (3, 4, 5)]
    async with ModelClient(ClientSettings(providers={"local": one})) as client:
        peak, results = await most_at_once(client, asks)
    assert peak == 1 and all(r.ok for r in results)
