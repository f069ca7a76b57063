"""The real embedded model (SmolLM2-135M via llama.cpp), offline, end to end."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from apex.cli.main import app
from apex.models import ChatRequest, ModelClient

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
