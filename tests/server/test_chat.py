"""Chat completions through ``apex serve`` with the official ``openai`` SDK: fused answers, usage
summed over every call of the cycle, pass-through, both override shapes, sampling, evidence."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import httpx
import openai
import pytest

from apex.testing import Reply, roles
from tests.server.conftest import Lab, Serve

QUESTION = [{"role": "user", "content": "What is the capital of Peru?"}]


def apex_of(completion: Any) -> dict[str, Any]:
    """The ``apex`` extension object of a completion."""
    extra = completion.model_extra or {}
    assert "apex" in extra, "the response carries no apex object"
    data: dict[str, Any] = extra["apex"]
    return data


def test_a_fused_answer_with_usage_summed_over_every_call(
    sdk: openai.OpenAI, own: Lab, main_server: Serve
) -> None:
    model = own.workflow(critics=("critic",))
    tokens = {"m1": (11, 3), "m2": (12, 4), "m3": (13, 5), "critic": (7, 1), "judge": (20, 9)}
    for name in ("m1", "m2", "m3"):
        p, c = tokens[name]
        own.reply(name, Reply(f"Lima ({name})", prompt_tokens=p, completion_tokens=c))
    own.default(
        "critic", lambda body: Reply(roles.critic()(body), prompt_tokens=7, completion_tokens=1)
    )
    own.default(
        "judge",
        lambda body: Reply(roles.judge("Lima.")(body), prompt_tokens=20, completion_tokens=9),
    )

    completion = sdk.chat.completions.create(model=model, messages=QUESTION)

    assert completion.object == "chat.completion" and completion.model == model
    assert completion.choices[0].message.content == "Lima."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == sum(p for p, _ in tokens.values()) == 63
    assert completion.usage.completion_tokens == sum(c for _, c in tokens.values()) == 22
    assert completion.usage.total_tokens == 85
    extra = apex_of(completion)
    assert extra["synthesis_path"] == "judge" and extra["calls"] == 5
    assert sorted(c["model"] for c in extra["candidates"]) == [
        own.spec(m) for m in ("m1", "m2", "m3")
    ]
    assert sorted(c["label"] for c in extra["candidates"]) == ["A", "B", "C"]
    assert all(c["score"] == 0.8 for c in extra["candidates"])
    assert extra["analysis"]["consensus"] and "cost_usd" in extra
    run = httpx.get(f"{main_server.url}/runs/{extra['run_id']}").json()
    assert run["status"] == "ok" and run["answer"] == "Lima." and len(run["calls"]) == 5
    assert completion.id == f"chatcmpl-{extra['run_id']}"


async def test_the_async_client_runs_cycles_concurrently(main_server: Serve, own: Lab) -> None:
    model = own.workflow()
    for name in ("m1", "m2", "m3"):
        own.default(name, Reply("Lima", latency=0.5))
    async with openai.AsyncOpenAI(base_url=main_server.url, api_key="x", max_retries=0) as sdk:
        answers = await asyncio.gather(
            *(sdk.chat.completions.create(model=model, messages=QUESTION) for _ in range(2))
        )
    assert [a.choices[0].message.content for a in answers] == ["fused"] * 2
    assert len({apex_of(a)["run_id"] for a in answers}) == 2
    for name in ("m1", "m2", "m3"):  # the two cycles' calls were in flight together
        assert own.provider.max_in_flight(own.model(name)) == 2


def test_streaming_with_the_sdk_ends_with_the_usage_chunk(sdk: openai.OpenAI, own: Lab) -> None:
    answer = "Lima is the capital of Peru, on the Pacific coast, founded in 1535."
    model = own.workflow(answer=answer)
    stream = sdk.chat.completions.create(
        model=model, messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finish] == ["stop"]
    assert apex_of(finish[0])["synthesis_path"] == "judge"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (40, 20)  # 4 calls
    assert all(c.usage is None for c in chunks[:-1])


def sse_lines(response: httpx.Response) -> list[tuple[float, str]]:
    """Every non-empty line of an event stream, with when it arrived."""
    return [(time.monotonic(), line) for line in response.iter_lines() if line]


def test_the_raw_stream_keeps_alive_while_the_panel_works(main_server: Serve, own: Lab) -> None:
    model = own.workflow()
    for name in ("m1", "m2", "m3"):
        own.reply(name, Reply("Lima", latency=1.0))
    body = {
        "model": model,
        "messages": QUESTION,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", f"{main_server.url}/chat/completions", json=body, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        run_id = r.headers["x-apex-run-id"]
        lines = sse_lines(r)
    texts = [line for _, line in lines]
    first_data = next(i for i, t in enumerate(texts) if t.startswith("data:"))
    keepalives = [t for t in texts[:first_data] if t.startswith(":")]
    assert len(keepalives) >= 3, texts[:first_data]  # a 1 s panel, keep-alives every 0.2 s
    assert texts[-1] == "data: [DONE]"
    events = [json.loads(t.removeprefix("data: ")) for t in texts[first_data:-1]]
    assert all(e["id"] == f"chatcmpl-{run_id}" for e in events)
    assert events[-1]["choices"] == [] and events[-1]["usage"]["total_tokens"] == 60
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-2]["apex"]["run_id"] == run_id


def test_a_provider_model_passes_through_as_one_call(sdk: openai.OpenAI, own: Lab) -> None:
    own.workflow()  # declares provider lab for the server
    own.reply("solo", Reply("just me", prompt_tokens=4, completion_tokens=2))
    completion = sdk.chat.completions.create(
        model=own.spec("solo"),
        messages=[{"role": "system", "content": "Be brief."}, *QUESTION],
        temperature=0.3,
        seed=7,
        max_tokens=42,
    )
    assert completion.choices[0].message.content == "just me"
    assert completion.model == own.spec("solo")
    assert completion.usage is not None and completion.usage.total_tokens == 6
    [sent] = own.requests("solo")
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": QUESTION[0]["content"]},
    ]
    assert (sent.body["temperature"], sent.body["seed"], sent.body["max_tokens"]) == (0.3, 7, 42)
    assert not own.requests("judge") and not own.requests("m1")


async def test_a_pass_through_call_streams_with_the_async_sdk(main_server: Serve, own: Lab) -> None:
    own.workflow()
    own.reply("solo", Reply("streamed alone, word by word", prompt_tokens=5, completion_tokens=6))
    async with openai.AsyncOpenAI(base_url=main_server.url, api_key="x", max_retries=0) as sdk:
        stream = await sdk.chat.completions.create(
            model=own.spec("solo"),
            messages=QUESTION,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert all(c.model == own.spec("solo") for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed alone, word by word"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 11
    assert len(own.requests("solo")) == 1 and not own.requests("judge")


def test_litellm_fusion_override_replaces_panel_and_judge(sdk: openai.OpenAI, own: Lab) -> None:
    model = own.workflow()
    own.default("other-judge", roles.judge("from the other judge"))
    completion = sdk.chat.completions.create(
        model=model,
        messages=QUESTION,
        extra_body={
            "fusion": {
                "models": [own.spec("x"), {"model": own.spec("y")}],
                "judge": {"model": own.spec("other-judge")},
            }
        },
    )
    assert completion.choices[0].message.content == "from the other judge"
    extra = apex_of(completion)
    assert sorted(c["model"] for c in extra["candidates"]) == [own.spec("x"), own.spec("y")]
    assert extra["judge_model"] == own.spec("other-judge")
    assert len(own.requests("x")) == len(own.requests("y")) == 1
    assert not own.requests("m1") and not own.requests("judge")


def test_openrouter_plugin_override(sdk: openai.OpenAI, own: Lab) -> None:
    model = own.workflow()
    own.default("j2", roles.judge("plugin judge"))
    plugin = {
        "id": "fusion",
        "analysis_models": [own.spec("p1"), own.spec("p2")],
        "model": own.spec("j2"),
    }
    completion = sdk.chat.completions.create(
        model=model, messages=QUESTION, extra_body={"plugins": [plugin]}
    )
    assert completion.choices[0].message.content == "plugin judge"
    assert sorted(c["model"] for c in apex_of(completion)["candidates"]) == [
        own.spec("p1"),
        own.spec("p2"),
    ]
    assert not own.requests("m1")
    # A bare model name in the OpenRouter shape is an OpenRouter model (here: no key).
    plugin["analysis_models"] = ["deepseek/deepseek-v3.2"]
    with pytest.raises(openai.BadRequestError, match="OPENROUTER_API_KEY"):
        sdk.chat.completions.create(
            model=model, messages=QUESTION, extra_body={"plugins": [plugin]}
        )


def test_temperature_seed_and_max_tokens_reach_the_panel_only(sdk: openai.OpenAI, own: Lab) -> None:
    model = own.workflow()
    sdk.chat.completions.create(
        model=model, messages=QUESTION, temperature=0.9, seed=100, max_tokens=64
    )
    for i, name in enumerate(("m1", "m2", "m3")):
        [sent] = own.requests(name)
        assert (sent.body["temperature"], sent.body["seed"], sent.body["max_tokens"]) == (
            0.9,
            100 + i,
            64,
        )
    [judged] = own.requests("judge")
    assert judged.body.get("temperature") is None and judged.body["max_tokens"] >= 1024


def test_metadata_category_and_expected_feed_the_evidence(
    sdk: openai.OpenAI, own: Lab, main_server: Serve
) -> None:
    model = own.workflow()
    own.default("m1", "Lima")
    own.default("m2", "Lima")
    own.default("m3", "Quito")
    category = f"geo-{own.tag}"
    sdk.chat.completions.create(
        model=model, messages=QUESTION, metadata={"category": category, "expected": "Lima"}
    )
    board = httpx.get(f"{main_server.url}/evidence", params={"category": category}).json()
    rows = {r["model"]: r for r in board["data"] if r["role"] == "panel"}
    assert rows[own.spec("m1")]["accuracy"] == 1.0 and rows[own.spec("m3")]["accuracy"] == 0.0
    assert all(r["ground_truth"] > 0 and r["category"] == category for r in rows.values())
    assert rows[own.spec("m1")]["weight"] > rows[own.spec("m3")]["weight"]


def test_feedback_after_the_fact_counts_once(
    sdk: openai.OpenAI, own: Lab, main_server: Serve
) -> None:
    model = own.workflow(answer="Lima")
    for name in ("m1", "m2", "m3"):
        own.default(name, "Lima")
    run_id = apex_of(sdk.chat.completions.create(model=model, messages=QUESTION))["run_id"]
    url = f"{main_server.url}/runs/{run_id}/feedback"
    first = httpx.post(url, json={"correct": True}).json()
    assert first["run_id"] == run_id and first["recorded"] > 0
    assert httpx.post(url, json={"correct": True}).json()["recorded"] == 0
    assert httpx.post(url, json={}).status_code == 400
    missing = httpx.post(f"{main_server.url}/runs/nope/feedback", json={"correct": False})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "run_not_found"


def test_models_lists_every_workflow_and_provider_model(
    sdk: openai.OpenAI, main_server: Serve
) -> None:
    ids = [m.id for m in sdk.models.list()]
    assert {"apex/lab", "apex/local", "apex/fusion", "apex/budget", "apex/self-fusion"} <= set(ids)
    assert {"lab:m1", "lab:judge", "local:smollm2"} <= set(ids)
    docs = httpx.get(f"{main_server.root}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = httpx.get(f"{main_server.root}/openapi.json").json()["paths"]
    assert {"/v1/chat/completions", "/v1/goals", "/v1/goals/{goal_id}/events"} <= set(paths)
    assert "no authentication, so bound to loopback only" in main_server.out.read_text()


def content_lines(lines: list[tuple[float, str]]) -> list[tuple[float, dict[str, Any]]]:
    """The data events of a stream that carry content, with when each arrived."""
    events = [(t, json.loads(line[6:])) for t, line in lines if line.startswith("data: {")]
    return [
        (t, e) for t, e in events if e.get("choices") and e["choices"][0]["delta"].get("content")
    ]


def stream_of(url: str, model: str) -> list[tuple[float, str]]:
    body = {"model": model, "messages": QUESTION, "stream": True}
    with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=30) as r:
        assert r.status_code == 200
        return sse_lines(r)


def test_the_judge_answer_streams_as_the_judge_writes_it(main_server: Serve, own: Lab) -> None:
    answer = "Lima is the capital of Peru. It was founded in 1535 by Francisco Pizarro."
    model = own.workflow(answer=answer)
    own.default("judge", lambda body: Reply(roles.judge(answer)(body), token_delay=0.05))
    lines = stream_of(main_server.url, model)
    content = content_lines(lines)
    assert "".join(e["choices"][0]["delta"]["content"] for _, e in content) == answer
    finished = next(t for t, line in lines if '"finish_reason":"stop"' in line)
    # the answer's ten pieces came 0.05 s apart, as the judge wrote them, not all at the end
    assert len(content) >= 4 and finished - content[0][0] >= 0.25
    # and each as it was written, not gathered until the stream's next keep-alive (0.2 s here)
    arrivals = [t for t, _ in content]
    apart = [b - a for a, b in itertools.pairwise(arrivals) if b - a >= 0.02]
    assert len(apart) >= 5, [round(b - a, 3) for a, b in itertools.pairwise(arrivals)]
    assert lines[-1][1] == "data: [DONE]"


def test_a_passed_through_call_streams_too(main_server: Serve, own: Lab) -> None:
    own.workflow()
    text = "just me, one word after another, as the model writes them"
    own.reply("solo", Reply(text, token_delay=0.03))
    lines = stream_of(main_server.url, own.spec("solo"))
    content = content_lines(lines)
    assert "".join(e["choices"][0]["delta"]["content"] for _, e in content) == text
    assert len(content) >= 4 and content[-1][0] - content[0][0] >= 0.15
    assert lines[-1][1] == "data: [DONE]"


def test_an_answer_withdrawn_after_streaming_ends_the_stream_with_an_error(
    main_server: Serve, own: Lab
) -> None:
    model = own.workflow()
    cut = '{"consensus": [], "scores": [], "final_answer": "Cusco, or rather'  # truncated JSON
    # Its pieces come 0.1 s apart: the stream must see some of them before the attempt fails
    # (a stream that saw none has nothing to withdraw and rightly sends the retry's answer).
    own.reply("judge", Reply(cut, finish_reason="length", token_delay=0.1), roles.judge("Lima."))
    lines = stream_of(main_server.url, model)
    streamed = "".join(e["choices"][0]["delta"]["content"] for _, e in content_lines(lines))
    assert streamed and "Cusco, or rather".startswith(streamed)  # what came before the retry
    error = json.loads(lines[-1][1].removeprefix("data: "))["error"]
    assert error["type"] == "answer_withdrawn" and "withdrawn" in error["message"]
    run_id = error["message"].split()[1].rstrip(":")
    run = httpx.get(f"{main_server.url}/runs/{run_id}").json()
    assert run["answer"] == "Lima." and run["synthesis_path"] == "judge_retry"
