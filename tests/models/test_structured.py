"""Structured output: JSON schema sent where supported, parse-and-repair otherwise."""

from __future__ import annotations

import json

import pytest

from apex.graph.prompts import CRITIC_SCHEMA, judge_schema
from apex.models import ChatRequest, ModelClient
from apex.models.structured import StructuredOutputError, _validator, parse_structured
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


def _judge_answer(mode: str, goal: bool) -> dict[str, object]:
    answer: dict[str, object] = {
        key: ["a point"]
        for key in ("consensus", "contradictions", "partial_coverage", "unique_insights")
    }
    answer["blind_spots"] = []
    answer["scores"] = [{"label": label, "score": 0.5, "reason": "ok"} for label in "ABC"]
    answer |= {"selected": "B"} if mode == "select" else {"final_answer": "The answer is B."}
    if goal:
        answer |= {"goal_met": True, "reasons": [], "missing": [], "blocker": ""}
    return answer


def _broken(value: dict[str, object]) -> list[object]:
    """Values one change away from ``value``: a key gone, a type or bound wrong, an extra item."""
    out: list[object] = [[], "text", None]
    for key, item in value.items():
        out.append({k: v for k, v in value.items() if k != key})
        out.append(value | {key: 3})
        if isinstance(item, list):
            out.append(value | {key: [*item, *item, 7, 7, 7]})
            out.append(value | {key: [{"label": "Z", "score": 2, "reason": 1}]})
    return out


@pytest.mark.parametrize(("mode", "goal"), [("judge", False), ("select", False), ("judge", True)])
def test_the_compiled_check_agrees_with_jsonschema_on_the_judges_schemas(
    mode: str, goal: bool
) -> None:
    schema = judge_schema(["A", "B", "C"], mode, goal)
    validator = _validator(schema)
    assert validator.fast is not None  # the shipped schemas take the compiled path
    good = _judge_answer(mode, goal)
    assert validator.accepts(good)
    for value in _broken(good):
        assert validator.accepts(value) == validator.full.is_valid(value), value
        assert not validator.accepts(value), value


def test_the_critics_schema_is_compiled_and_refuses_what_jsonschema_refuses() -> None:
    validator = _validator(CRITIC_SCHEMA)
    assert validator.fast is not None
    good = {"reviews": [{"label": "A", "problems": [
        {"type": "factual", "severity": "high", "detail": "wrong year"}]}]}  # fmt: skip
    assert validator.accepts(good)
    for value in [*_broken(good), {"reviews": [{"label": "A", "problems": [{"type": "x"}]}]}]:
        assert validator.accepts(value) == validator.full.is_valid(value), value


def test_a_schema_beyond_the_plain_keywords_is_checked_by_jsonschema_alone() -> None:
    schema = {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]}
    validator = _validator(schema)
    assert validator.fast is None  # a draft-7 validator would ignore prefixItems
    assert parse_structured('[1, "x"]', schema) == [1, "x"]
    with pytest.raises(StructuredOutputError, match="is not of type"):
        parse_structured('["x", 1]', schema)
