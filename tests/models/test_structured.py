"""Structured output: JSON schema sent where supported, parse-and-repair otherwise."""

from __future__ import annotations

import json

import pytest

from apex.models import ChatRequest, ModelClient
from apex.models.structured import StructuredOutputError, parse_structured
from apex.testing import Reply, TestServer
from apex.workflow import Workflow

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "score": {"type": "number"}},
    "required": ["answer", "score"],
}


@pytest.mark.parametrize(
    "text",
    [
        '{"answer": "x", "score": 0.5}',
        'Sure! ```json\n{"answer": "x", "score": 0.5}\n``` hope that helps',
        'Here it is: {"answer": "x", "score": 0.5,} done',
        '{"answer": "x", "score": 0.5',
    ],
)
def test_parse_and_repair(text: str) -> None:
    assert parse_structured(text, SCHEMA) == {"answer": "x", "score": 0.5}


def test_schema_mismatch_names_the_field() -> None:
    with pytest.raises(StructuredOutputError, match="score"):
        parse_structured('{"answer": "x", "score": "high"}', SCHEMA)


async def test_schema_sent_in_response_format(server: TestServer, lab: Workflow) -> None:
    server.script("m1", Reply('{"answer": "x", "score": 1}'))
    async with ModelClient(lab.client_settings) as c:
        result = await c.chat("lab:m1", ChatRequest.of("q", json_schema=SCHEMA))
    body = server.requests_for("m1")[0].body
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert result.parsed == {"answer": "x", "score": 1}


async def test_fallback_instruction_when_unsupported(server: TestServer, lab: Workflow) -> None:
    no_schema = lab.model_copy(deep=True)
    no_schema.providers["lab"].json_schema = False
    server.script("m1", Reply('Answer: {"answer": "y", "score": 0.1,}'))
    async with ModelClient(no_schema.client_settings) as c:
        result = await c.chat("lab:m1", ChatRequest.of("q", json_schema=SCHEMA))
    body = server.requests_for("m1")[0].body
    assert "response_format" not in body
    assert json.dumps(SCHEMA, separators=(",", ":")) in body["messages"][0]["content"]
    assert result.parsed == {"answer": "y", "score": 0.1}


async def test_unrepairable_is_schema_mismatch(server: TestServer, lab: Workflow) -> None:
    server.script("m1", Reply("I think the answer is x."))
    async with ModelClient(lab.client_settings) as c:
        result = await c.chat("lab:m1", ChatRequest.of("q", json_schema=SCHEMA))
    assert result.failure is not None and result.failure.kind == "schema_mismatch"
