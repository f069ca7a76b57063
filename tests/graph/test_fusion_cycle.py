"""One fusion cycle: parallel panel, critics, blind judge, synthesis paths.

In-process (no socket, no thread); the parallel fan-out and the judge's blind request bytes are
checked over real HTTP too.
"""

from __future__ import annotations

import json

import pytest
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from apex.errors import ConfigError
from apex.fusion import fuse
from apex.graph.builder import build_fusion_graph
from apex.graph.nodes import FusionDeps
from apex.models import ModelClient
from apex.testing import Fail, InProcessServer, Malformed, Reply, ScriptedModels, roles
from tests.graph.conftest import PROVIDER, fusion_workflow

PANEL = ("alpha-one", "beta-two", "gamma-three")


def script_panel(server: ScriptedModels, latency: float = 0.0) -> None:
    for i, model in enumerate(PANEL):
        server.default(model, Reply(f"Answer number {i}: The answer is (B)", latency=latency))


async def test_panel_fans_out_in_parallel(any_server: ScriptedModels) -> None:
    script_panel(any_server, latency=0.5)
    any_server.default("judge-model", roles.judge("B"))
    result = await fuse("q?", workflow=fusion_workflow(any_server.base_url))
    panel_requests = [r for r in any_server.requests if r.model in PANEL]
    assert len(panel_requests) == 3
    # every panel request started before any of them finished
    assert max(r.started for r in panel_requests) < min(r.finished for r in panel_requests)
    assert result.latency_s < 1.2
    assert result.synthesis_path == "judge" and result.answer == "B"


async def test_judge_request_is_blind(any_server: ScriptedModels) -> None:
    script_panel(any_server)
    any_server.default("critic-model", roles.critic())
    any_server.default("judge-model", roles.judge("final"))
    wf = fusion_workflow(any_server.base_url, critics=("critic-model",))
    result = await fuse("Which letter?", workflow=wf)
    raw = any_server.requests_for("judge-model")[0].raw
    for name in (*PANEL, "critic-model", PROVIDER):
        assert name.encode() not in raw, name
    body = json.loads(raw)
    user = body["messages"][-1]["content"]
    assert "Critics' reviews" in user and "scripted finding" in user
    # candidates appear in label order, whatever order they arrived in
    labels = roles.candidate_labels(body)
    assert labels == sorted(labels) == ["A", "B", "C"]
    assert result.critiques and result.critiques[0].reviews
    panel_bodies = [r.body for r in any_server.requests if r.model in PANEL]
    assert all("score" not in json.dumps(b) for b in panel_bodies)  # generators never see scores


async def test_labels_are_shuffled_not_arrival_order(inproc: InProcessServer) -> None:
    # alpha answers first, gamma last: arrival order is fixed, labels must not follow it
    for model, latency in zip(PANEL, (0.0, 0.01, 0.02), strict=True):
        inproc.default(model, Reply(f"{model} text", latency=latency))
    inproc.default("judge-model", roles.judge("x"))
    wf = fusion_workflow(inproc.base_url)
    first_labels = set()
    async with ModelClient(wf.client_settings) as client:
        for _ in range(12):
            result = await fuse("q", workflow=wf, client=client)
            first_labels.add(result.candidates[0].label)
    assert len(first_labels) >= 2  # P(all 12 equal by chance) = 3 * (1/3)^12


async def test_self_judge_refused_unless_allowed(inproc: InProcessServer) -> None:
    script_panel(inproc)
    inproc.default("alpha-one", roles.judge("ok"))
    with pytest.raises(ConfigError, match="allow_self_judge"):
        fusion_workflow(inproc.base_url, judge="alpha-one")
    allowed = fusion_workflow(inproc.base_url, judge="alpha-one", extra="allow_self_judge = true")
    inproc.script("alpha-one", "panel answer")
    result = await fuse("q", workflow=allowed)
    assert result.synthesis_path == "judge"


async def test_some_members_fail_within_quorum(inproc: InProcessServer) -> None:
    script_panel(inproc)
    inproc.default("beta-two", Fail(500))
    inproc.default("judge-model", roles.judge("fine"))
    result = await fuse("q", workflow=fusion_workflow(inproc.base_url))
    assert result.synthesis_path == "judge"
    failed = [c for c in result.candidates if not c.ok]
    assert [c.model for c in failed] == [f"{PROVIDER}:beta-two"]
    assert failed[0].label is None and "http_error" in (failed[0].error or "")
    judge_user = inproc.requests_for("judge-model")[0].body["messages"][-1]["content"]
    assert "[C]" not in judge_user  # only the two survivors were labelled


async def test_all_panel_failed(inproc: InProcessServer) -> None:
    for model in PANEL:
        inproc.default(model, Fail(503))
    result = await fuse("q", workflow=fusion_workflow(inproc.base_url))
    assert result.synthesis_path == "all_panel_failed" and not result.ok
    assert result.answer == "" and not inproc.requests_for("judge-model")


async def test_quorum_failed(inproc: InProcessServer) -> None:
    script_panel(inproc)
    inproc.default("gamma-three", Fail(500))
    result = await fuse("q", workflow=fusion_workflow(inproc.base_url, extra="quorum = 3"))
    assert result.synthesis_path == "quorum_failed" and not result.ok


async def test_judge_retry(inproc: InProcessServer) -> None:
    script_panel(inproc)
    inproc.script("judge-model", Reply("not json at all"))
    inproc.default("judge-model", roles.judge("second time"))
    result = await fuse("q", workflow=fusion_workflow(inproc.base_url))
    assert result.synthesis_path == "judge_retry" and result.answer == "second time"
    kinds = [c.failure_kind for c in result.calls if c.role == "judge"]
    assert kinds == ["schema_mismatch", None]


async def test_fallback_judge(inproc: InProcessServer) -> None:
    script_panel(inproc)
    inproc.default("judge-model", Malformed())
    inproc.default("judge-two", roles.judge("from the fallback"))
    wf = fusion_workflow(inproc.base_url, fallback="judge-two")
    result = await fuse("q", workflow=wf)
    assert result.synthesis_path == "fallback_judge" and result.answer == "from the fallback"
    assert result.judge_model == f"{PROVIDER}:judge-two"


async def test_judge_failure_falls_back_to_vote(inproc: InProcessServer) -> None:
    inproc.default("alpha-one", Reply("The answer is (C)"))
    inproc.default("beta-two", Reply("I pick C. The answer is (C)"))
    inproc.default("gamma-three", Reply("The answer is (A)"))
    inproc.default("judge-model", Fail(500))
    result = await fuse(
        "q", workflow=fusion_workflow(inproc.base_url, extra='[extract]\nkind = "choice"')
    )
    assert result.synthesis_path == "vote_fallback" and result.answer == "C"


async def test_nothing_extractable_falls_back_to_best_record(inproc: InProcessServer) -> None:
    script_panel(inproc)
    inproc.default("judge-model", Fail(500))
    extra = '[extract]\nkind = "regex"\npattern = "FINAL=(\\\\w+)"'
    result = await fuse("q", workflow=fusion_workflow(inproc.base_url, extra=extra))
    assert result.synthesis_path == "best_record"
    assert result.answer.startswith("Answer number")


async def test_vote_mode_needs_no_judge(inproc: InProcessServer) -> None:
    inproc.default("alpha-one", Reply("so 42"))
    inproc.default("beta-two", Reply("It is 42.0"))
    inproc.default("gamma-three", Reply("41"))
    extra = 'synthesis = "vote"\n[extract]\nkind = "number"'
    result = await fuse("q", workflow=fusion_workflow(inproc.base_url, judge=None, extra=extra))
    assert result.synthesis_path == "vote" and result.answer == "42"
    assert not inproc.requests_for("judge-model")
    panel_system = inproc.requests_for("alpha-one")[0].body["messages"][0]["content"]
    assert "The answer is N" in panel_system


async def test_select_mode_returns_a_candidate_verbatim(inproc: InProcessServer) -> None:
    for model in PANEL:
        inproc.default(model, Reply(f"full text of {model}"))
    inproc.default("judge-model", roles.judge(select="B"))
    result = await fuse(
        "q", workflow=fusion_workflow(inproc.base_url, extra='synthesis = "select"')
    )
    chosen = next(c for c in result.candidates if c.label == "B")
    assert result.synthesis_path == "select" and result.answer == chosen.text


async def test_cost_is_summed_or_unknown(inproc: InProcessServer) -> None:
    for model in PANEL:
        inproc.default(model, Reply("a", cost=0.01))
    inproc.default("judge-model", lambda body: Reply(roles.judge("x")(body), cost=0.02))
    result = await fuse("q", workflow=fusion_workflow(inproc.base_url))
    assert result.cost_usd == pytest.approx(0.05)
    inproc.default("judge-model", roles.judge("x"))  # reports no cost
    assert (await fuse("q", workflow=fusion_workflow(inproc.base_url))).cost_usd is None


class Outer(TypedDict, total=False):
    prompt: str
    result: object


async def test_graph_embeds_as_a_subgraph(inproc: InProcessServer) -> None:
    script_panel(inproc)
    inproc.default("judge-model", roles.judge("embedded"))
    outer = StateGraph(Outer, context_schema=FusionDeps)
    outer.add_node("fusion", build_fusion_graph())
    outer.add_edge(START, "fusion")
    outer.add_edge("fusion", END)
    wf = fusion_workflow(inproc.base_url)
    async with ModelClient(wf.client_settings) as client:
        state = await outer.compile().ainvoke({"prompt": "q"}, context=FusionDeps(client, wf))
    assert state["result"].answer == "embedded"
