"""The judge stays blind through the server: whatever a request names (panel overrides in either
shape, metadata, the user field), no panel or critic model name is in the bytes the judge gets."""

from __future__ import annotations

import json

import httpx

from apex.testing import roles
from tests.server.conftest import Lab, Serve

PANEL = ("alpha-one", "beta-two", "gamma-three")
QUESTION = [{"role": "user", "content": "What is the capital of Peru?"}]


def test_no_model_name_reaches_the_judge_whatever_the_request_says(
    main_server: Serve, own: Lab
) -> None:
    model = own.workflow(PANEL, critics=("critic-model",), judge="judge-model")
    own.default("judge-model", roles.judge("Lima"))
    for name, answer in zip(PANEL, ("Lima", "Lima", "Quito"), strict=True):
        own.default(name, answer)
    specs = [own.spec(m) for m in PANEL]
    secret = [own.model(m) for m in (*PANEL, "critic-model")] + ["lab:"]
    category = f"geo-{own.tag}"
    url = f"{main_server.url}/chat/completions"
    for _ in range(2):  # ground truth first, so that the judge also gets reliability hints
        body = {
            "model": model,
            "messages": QUESTION,
            "metadata": {"category": category, "expected": "Lima"},
        }
        assert httpx.post(url, json=body, timeout=30).status_code == 200
    warmed = len(own.requests("judge-model"))
    named = {"metadata": {"category": category, "panel": ",".join(specs)}, "user": specs[0]}
    requests = [
        {
            "fusion": {"models": specs, "judge": {"model": own.spec("judge-model")}},
            "temperature": 0.5,
            "seed": 3,
        },
        {
            "plugins": [
                {"id": "fusion", "analysis_models": specs, "model": own.spec("judge-model")}
            ],
            "stream": True,
        },
        {},
    ]
    for extra in requests:
        response = httpx.post(
            url, json={"model": model, "messages": QUESTION} | named | extra, timeout=30
        )
        assert response.status_code == 200, response.text
        assert specs[0] in response.text  # the caller may see who answered; the judge may not
    judged = own.requests("judge-model")[warmed:]
    assert len(judged) == len(requests)
    for request in judged:
        for name in secret:
            assert name.encode() not in request.raw, name
        user = json.loads(request.raw)["messages"][-1]["content"]
        assert "Lima" in user and "Quito" in user and "Critics' reviews" in user
        assert "Reliability hints from past evidence" in user
