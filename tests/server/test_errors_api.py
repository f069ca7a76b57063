"""Every error in OpenAI's shape with its status, before and after a stream's first byte, and a
client that leaves mid-stream cancelling the calls still in flight."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx
import openai
import pytest

from apex.testing import Fail, Reply
from tests.server.conftest import DEADLINE_S, MAX_BODY_BYTES, MAX_CONCURRENT, Lab, Serve, wait_until

QUESTION = [{"role": "user", "content": "What is the capital of Peru?"}]


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The OpenAI error object of a response (checking its shape)."""
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


def post(server: Serve, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/chat/completions", json=body, timeout=30, **kwargs)


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({"model": "apex/lab"}, "messages", "Field required"),
        ({"model": "apex/lab", "messages": []}, "messages", "at least 1"),
        (
            {"model": "apex/lab", "messages": [{"role": "assistant", "content": "hi"}]},
            "messages",
            "must be a non-empty user message",
        ),
        ({"model": "apex/lab", "messages": QUESTION, "n": 2}, "n", "n > 1"),
        (
            {"model": "apex/lab", "messages": QUESTION, "tools": [{"type": "function"}]},
            "tools",
            "tools are not supported",
        ),
        (
            {"model": "apex/lab", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].role",
            "not supported",
        ),
        (
            {
                "model": "apex/lab",
                "messages": QUESTION,
                "fusion": {"models": ["lab:a"]},
                "plugins": [{"id": "fusion", "analysis_models": ["lab:b"]}],
            },
            "fusion",
            "not both",
        ),
        (
            {"model": "apex/lab", "messages": QUESTION, "fusion": {"models": []}},
            "fusion.models",
            "non-empty list",
        ),
        (
            {"model": "apex/lab", "messages": QUESTION, "fusion": {"judge": "lab:m1"}},
            None,
            "also sits on the panel",
        ),
        (
            {"model": "lab:m1", "messages": QUESTION, "fusion": {"models": ["lab:a"]}},
            "model",
            "need model 'apex/<workflow>'",
        ),
        (
            {"model": "apex/lab", "messages": QUESTION, "metadata": {"n_options": "one"}},
            "metadata.n_options",
            "integer from 2",
        ),
        ({"model": "apex/lab", "messages": QUESTION, "temperature": 5}, "temperature", "2"),
    ],
)
def test_400_bad_requests(main_server: Serve, body: Any, param: str | None, says: str) -> None:
    response = post(main_server, body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert says in error["message"]


def test_400_and_404_through_the_sdk(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.chat.completions.create(model="apex/lab", messages=[{"role": "system", "content": "x"}])
    assert bad.value.status_code == 400
    with pytest.raises(openai.NotFoundError) as unknown:
        sdk.chat.completions.create(model="apex/no-such-workflow", messages=QUESTION)
    assert unknown.value.code == "model_not_found" and "apex/lab" in unknown.value.message
    with pytest.raises(openai.NotFoundError, match="unknown provider 'nowhere'"):
        sdk.chat.completions.create(model="nowhere:model", messages=QUESTION)
    with pytest.raises(openai.NotFoundError, match="not provider:model"):
        sdk.chat.completions.create(model="gpt-4o", messages=QUESTION)


def test_404_unknown_route_and_goal(main_server: Serve) -> None:
    assert error_of(httpx.get(f"{main_server.url}/nothing-here"))["code"] == "not_found"
    goal = httpx.get(f"{main_server.url}/goals/g-nope")
    assert goal.status_code == 404 and error_of(goal)["code"] == "goal_not_found"


def test_413_body_too_large(main_server: Serve) -> None:
    big = {"model": "apex/lab", "messages": [{"role": "user", "content": "x" * MAX_BODY_BYTES}]}
    response = post(main_server, big)
    assert response.status_code == 413 and error_of(response)["code"] == "body_too_large"
    chunked = httpx.post(
        f"{main_server.url}/chat/completions", timeout=30, content=iter([json.dumps(big).encode()])
    )
    assert chunked.status_code == 413  # no Content-Length: counted as it arrives


async def test_429_when_the_cycles_in_flight_are_capped(main_server: Serve, own: Lab) -> None:
    model = own.workflow(("m1",))  # one call per cycle: the provider's own limit stays clear
    own.default("m1", Reply("Lima", latency=1.0))
    body = {"model": model, "messages": QUESTION}
    async with httpx.AsyncClient(base_url=main_server.url, timeout=30) as client:
        busy = [
            asyncio.create_task(client.post("/chat/completions", json=body))
            for _ in range(MAX_CONCURRENT)
        ]
        await asyncio.to_thread(
            wait_until,
            lambda: main_server.health()["cycles_in_flight"] == MAX_CONCURRENT,
            "a full house",
        )
        refused = await client.post("/chat/completions", json=body)
        answered = await asyncio.gather(*busy)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert error_of(refused)["code"] == "overloaded"
    assert [r.status_code for r in answered] == [200] * MAX_CONCURRENT


def test_502_when_every_panel_member_failed(
    sdk: openai.OpenAI, main_server: Serve, own: Lab
) -> None:
    model = own.workflow()
    for name in ("m1", "m2", "m3"):
        own.default(name, Fail(500))
    with pytest.raises(openai.InternalServerError) as failed:
        sdk.chat.completions.create(model=model, messages=QUESTION)
    assert failed.value.status_code == 502 and failed.value.code == "all_panel_failed"
    # A stream that fails before its first byte still gets its real status.
    stream = post(main_server, {"model": model, "messages": QUESTION, "stream": True})
    assert stream.status_code == 502 and error_of(stream)["code"] == "all_panel_failed"
    assert not own.requests("judge")


def test_an_error_after_the_first_byte_is_an_error_event(main_server: Serve, own: Lab) -> None:
    model = own.workflow()
    for name in ("m1", "m2", "m3"):
        own.default(name, Fail(500, latency=0.6))
    body = {"model": model, "messages": QUESTION, "stream": True}
    with httpx.stream("POST", f"{main_server.url}/chat/completions", json=body, timeout=30) as r:
        assert r.status_code == 200
        lines = [line for line in r.iter_lines() if line]
    assert lines[0].startswith(":")  # keep-alives went out: the status was committed
    data = [line for line in lines if line.startswith("data:")]
    assert len(data) == 1 and "[DONE]" not in data[0]
    error = json.loads(data[0].removeprefix("data: "))["error"]
    assert error["code"] == "all_panel_failed" and error["type"] == "upstream_error"
    # The SDK raises it as an API error.
    with openai.OpenAI(base_url=main_server.url, api_key="x", max_retries=0) as sdk:
        stream = sdk.chat.completions.create(model=model, messages=QUESTION, stream=True)
        with pytest.raises(openai.APIError, match="every panel member failed"):
            list(stream)


def test_504_on_the_cycle_deadline_records_the_run(main_server: Serve, own: Lab) -> None:
    model = own.workflow()
    own.reply("m1", Reply("slow", latency=DEADLINE_S + 3))
    # The fast members answer 0.1 s apart: LangGraph may stream the update of a task that ended
    # in the same instant as another only with the next one, and a cycle cancelled before then
    # records only the calls it heard of.
    own.reply("m3", Reply("Lima", latency=0.1))
    started = time.monotonic()
    response = post(main_server, {"model": model, "messages": QUESTION})
    assert DEADLINE_S <= time.monotonic() - started < DEADLINE_S + 2
    assert response.status_code == 504, response.text
    error = error_of(response)
    assert error["code"] == "deadline_exceeded" and error["type"] == "timeout_error"
    run_id = re.search(r"run (\w+)", error["message"]).group(1)
    run = httpx.get(f"{main_server.url}/runs/{run_id}").json()
    assert (run["status"], run["synthesis_path"]) == ("cancelled", "deadline")
    assert sorted(c["model"] for c in run["calls"]) == [own.spec("m2"), own.spec("m3")]
    assert not own.requests("judge")


def test_a_client_that_leaves_mid_stream_cancels_the_calls_in_flight(
    main_server: Serve, own: Lab
) -> None:
    model = own.workflow(critics=("critic",))
    slow_s = 2.0
    own.reply("m3", Reply("too late", latency=slow_s))
    own.reply("m2", Reply("Lima", latency=0.1))  # apart from m1: see the 504 test
    body = {"model": model, "messages": QUESTION, "stream": True}
    with httpx.stream("POST", f"{main_server.url}/chat/completions", json=body, timeout=30) as r:
        run_id = r.headers["x-apex-run-id"]
        lines = r.iter_lines()
        assert next(lines).startswith(":")  # a keep-alive: the cycle is under way
        wait_until(
            lambda: (
                bool(own.requests("m1"))
                and all(q.finished for m in ("m1", "m2") for q in own.requests(m))
            ),
            "two answers",
        )
        left = time.monotonic()
    # Closing the connection cancels the cycle: it ends long before the slow member would answer.
    wait_until(lambda: main_server.health()["cycles_in_flight"] == 0, "the cancelled cycle", 1.5)
    run = httpx.get(f"{main_server.url}/runs/{run_id}").json()
    assert time.monotonic() - left < slow_s
    [in_flight] = own.requests("m3")
    assert not in_flight.finished, "the slow call was still in flight when the run ended"
    assert (run["status"], run["synthesis_path"], run["answer"]) == ("cancelled", "cancelled", "")
    assert sorted(c["model"] for c in run["calls"]) == [own.spec("m1"), own.spec("m2")]
    assert not own.requests("critic") and not own.requests("judge")
    assert (
        httpx.post(f"{main_server.url}/runs/{run_id}/feedback", json={"correct": True}).status_code
        == 409
    )


def test_a_client_that_gives_up_on_a_plain_request_cancels_its_cycle(
    main_server: Serve, own: Lab
) -> None:
    model = own.workflow()
    own.reply("m1", Reply("too late", latency=3.0))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{main_server.url}/chat/completions",
            timeout=0.5,
            json={"model": model, "messages": QUESTION},
        )
    left = time.monotonic()
    wait_until(lambda: main_server.health()["cycles_in_flight"] == 0, "the cancelled cycle", 2.0)
    assert time.monotonic() - left < 2.0
    [in_flight] = own.requests("m1")
    assert not in_flight.finished and not own.requests("judge")
