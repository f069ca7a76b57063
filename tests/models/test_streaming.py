"""Streamed calls: the text heard as it arrives, the same result as an unstreamed call.

Over both scripted servers (real HTTP and in-process): the request asks for a stream with the
usage chunk, the sink hears the answer grow, and the result (text, usage, finish reason) is what
the same call returns unstreamed. A provider that answers with one JSON body (a refusal here)
is read as usual (a broken one is malformed); a retried call starts its text again. The stream
reader's own failure cases (an error event, a stream cut before its end) are checked on the
bytes themselves.
"""

from __future__ import annotations

import itertools

import httpx
import pytest

from apex.models import ModelClient
from apex.models.streaming import StreamFailure, read_completion
from apex.models.types import ChatRequest, Message
from apex.testing import Fail, Malformed, Refuse, Reply, ScriptedModels, workflow_toml
from apex.workflow import parse_workflow

TEXT = "Lima is the capital of Peru, founded in 1535 on the Pacific coast."
ASK = ChatRequest(messages=[Message(role="user", content="Capital of Peru?")])


def client_for(server: ScriptedModels, retries: int = 0) -> ModelClient:
    text = workflow_toml(server.base_url, ("m1",), settings=f"max_retries = {retries}")
    return ModelClient(parse_workflow(text, "lab.toml").client_settings)


async def test_a_streamed_call_is_heard_growing_and_ends_as_an_unstreamed_one(
    any_server: ScriptedModels,
) -> None:
    any_server.default("m1", Reply(TEXT, prompt_tokens=12, completion_tokens=17))
    heard: list[str] = []
    async with client_for(any_server) as client:
        streamed = await client.chat("lab:m1", ASK, heard.append)
        plain = await client.chat("lab:m1", ASK)
    body = any_server.requests_for("m1")[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "stream" not in any_server.requests_for("m1")[1].body
    assert len(heard) > 3 and heard[-1] == TEXT
    assert all(b.startswith(a) for a, b in itertools.pairwise(heard))
    assert streamed.ok and streamed.text == plain.text == TEXT
    assert streamed.usage == plain.usage and streamed.usage.completion_tokens == 17
    assert streamed.finish_reason == plain.finish_reason == "stop"


async def test_a_streamed_request_lasts_until_its_last_piece(any_server: ScriptedModels) -> None:
    any_server.default("m1", Reply(TEXT, token_delay=0.02))  # 9 pieces of 8 characters
    async with client_for(any_server) as client:
        await client.chat("lab:m1", ASK, lambda _text: None)
    request = any_server.requests_for("m1")[0]
    assert request.finished - request.started >= 0.15  # recorded as in flight while it streamed


async def test_a_body_that_is_not_a_stream_is_read_as_usual(any_server: ScriptedModels) -> None:
    any_server.script("m1", Refuse("not that"))
    heard: list[str] = []
    async with client_for(any_server) as client:
        result = await client.chat("lab:m1", ASK, heard.append)
    assert result.failure is not None and result.failure.kind == "refusal"
    assert heard == []


async def test_a_broken_body_to_a_streamed_call_is_malformed(any_server: ScriptedModels) -> None:
    any_server.script("m1", Malformed())
    async with client_for(any_server) as client:
        result = await client.chat("lab:m1", ASK, lambda _text: None)
    assert result.failure is not None and result.failure.kind == "malformed_response"


async def test_a_retried_stream_starts_its_text_again(any_server: ScriptedModels) -> None:
    any_server.script("m1", Fail(503), Reply(TEXT))
    heard: list[str] = []
    async with client_for(any_server, retries=1) as client:
        result = await client.chat("lab:m1", ASK, heard.append)
    assert result.ok and result.attempts == 2 and heard[-1] == TEXT


PIECE = 'data: {"choices": [{"delta": {"content": "Li"}}]}'


async def test_a_provider_refusing_streams_is_asked_plainly(any_server: ScriptedModels) -> None:
    any_server.default("m1", lambda body: Fail(400) if body.get("stream") else Reply(TEXT))
    heard: list[str] = []
    async with client_for(any_server) as client:
        first = await client.chat("lab:m1", ASK, heard.append)
        second = await client.chat("lab:m1", ASK, heard.append)
    assert first.ok and second.ok and first.text == second.text == TEXT
    assert first.attempts == 2 and second.attempts == 1  # refused once, then never asked again
    assert [r.body.get("stream") for r in any_server.requests_for("m1")] == [True, None, None]
    assert heard == [TEXT, TEXT]  # a plain answer is heard once, whole


def sse(*lines: str) -> httpx.Response:
    content = "".join(f"{line}\n\n" for line in lines).encode()
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=content)


@pytest.mark.parametrize(
    ("events", "kind", "words"),
    [
        ([PIECE, 'data: {"error": {"message": "overloaded"}}'], "http_error", "overloaded"),
        ([PIECE], "malformed_response", "ended"),
        (["data: {not json"], "malformed_response", "not JSON"),
    ],
)  # fmt: skip
async def test_a_stream_that_fails_says_how(events: list[str], kind: str, words: str) -> None:
    with pytest.raises(StreamFailure) as caught:
        await read_completion(sse(*events), lambda _text: None)
    assert caught.value.kind == kind and words in str(caught.value)


async def test_comments_and_the_usage_chunk_are_read() -> None:
    response = sse(
        ": keep-alive",
        'data: {"model": "m", "choices": [{"delta": {"role": "assistant", "content": ""}}]}',
        'data: {"choices": [{"delta": {"content": " Lima"}, "finish_reason": null}]}',
        'data: {"choices": [{"delta": {}, "finish_reason": "length"}]}',
        'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}',
        "data: [DONE]",
    )
    heard: list[str] = []
    data = await read_completion(response, heard.append)
    assert heard == ["Lima"]
    assert data["choices"][0]["message"]["content"] == " Lima"
    assert data["choices"][0]["finish_reason"] == "length" and data["model"] == "m"
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 1}
