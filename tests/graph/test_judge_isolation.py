"""The judge is blind by construction, on every path that reaches it, and never sits on the panel.

Every judge request (judge, select, goal judge, fallback judge) is sent with critics' reviews and
reliability hints present, and its bytes carry no panel model, critic or provider name. The judge
node's only dependency is ``JudgeDeps``: its own models and settings. A judge that sits on the
panel is refused by every entry point.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apex.cli.exits import EXIT_BAD_INPUT
from apex.cli.main import app
from apex.errors import WorkflowFileError
from apex.fusion import fuse
from apex.goals.runner import Goal
from apex.goals.store import GoalStore
from apex.goals.types import Limits
from apex.graph import nodes
from apex.graph.nodes import FusionDeps, JudgeDeps
from apex.graph.types import JudgeInput
from apex.models import ModelClient
from apex.store import EvidenceEvent, EvidenceStore
from apex.testing import Fail, TestServer, roles, workflow_toml
from apex.workflow import load_workflow, parse_workflow

runner = CliRunner()
PROVIDER = "zzprov"
PANEL = ("alpha-one", "beta-two", "gamma-three")
SECRET_NAMES = (*PANEL, "critic-model", PROVIDER)


def workflow_path(tmp_path: Path, base_url: str, synthesis: str, fallback: bool = False) -> Path:
    text = workflow_toml(
        base_url,
        PANEL,
        critics=("critic-model",),
        judge="judge-model",
        fallback="fallback-judge" if fallback else None,
        provider=PROVIDER,
        name="blind",
        settings=f'synthesis = "{synthesis}"\nmax_retries = 0\ncategory = "geo"',
    )
    path = tmp_path / "blind.toml"
    path.write_text(text)
    return path


def seeded_store(tmp_path: Path) -> EvidenceStore:
    """A store where alpha-one has a good record and gamma-three a bad one: hints differ."""
    store = EvidenceStore(f"sqlite:///{tmp_path / 'blind.db'}")
    events = [
        EvidenceEvent(model=f"{PROVIDER}:{m}", category="geo", kind="verdict", correct=ok,
                      support=0.5)
        for _ in range(10)
        for m, ok in (("alpha-one", True), ("gamma-three", False))
    ]  # fmt: skip
    store.apply(events)
    return store


def script(server: TestServer, select: bool) -> None:
    for model in PANEL:
        server.default(model, "Lima is the capital of Peru.")
    server.default("critic-model", roles.critic())
    server.default("judge-model", roles.judge("Lima", select="A" if select else None))
    server.default("fallback-judge", roles.judge("Lima"))


def assert_blind(raw: bytes, goal: bool) -> None:
    for name in SECRET_NAMES:
        assert name.encode() not in raw, name
    body = json.loads(raw)
    user = body["messages"][-1]["content"]
    assert "Critics' reviews" in user and "Reliability hints from past evidence" in user
    assert ("goal_met" in json.dumps(body["response_format"])) is goal


@pytest.mark.parametrize("path", ["judge", "select", "fallback_judge", "goal_judge"])
async def test_every_judge_path_is_blind(server: TestServer, tmp_path: Path, path: str) -> None:
    script(server, select=path == "select")
    synthesis = "select" if path == "select" else "judge"
    wf = workflow_path(tmp_path, server.base_url, synthesis, fallback=path == "fallback_judge")
    if path == "fallback_judge":
        server.default("judge-model", Fail(500))
    store = seeded_store(tmp_path)
    with store:
        if path == "goal_judge":
            status = await Goal("Capital of Peru?", workflow=str(wf), store=store,
                                limits=Limits(max_cycles=1)).run()  # fmt: skip
            assert status.cycles[0].synthesis_path == "judge"
        else:
            result = await fuse("Capital of Peru?", workflow=wf, store=store)
            assert result.synthesis_path == path
    judge = "fallback-judge" if path == "fallback_judge" else "judge-model"
    requests = server.requests_for(judge)
    assert requests
    for request in requests:
        assert_blind(request.raw, goal=path == "goal_judge")


def test_the_judge_node_gets_only_judge_deps() -> None:
    """By type: the node takes a JudgeInput and a JudgeDeps, which can call the judges only."""
    signature = inspect.signature(nodes.judge)
    assert [p.annotation for p in signature.parameters.values()] == ["JudgeInput", "JudgeDeps"]
    assert [f.name for f in dataclasses.fields(JudgeDeps)] == [
        "primary", "fallback", "temperature", "max_tokens", "on_answer",
    ]  # fmt: skip
    # on_answer only hears the judge's own answer: a sink of text, returning nothing to it
    assert dataclasses.fields(JudgeDeps)[-1].type == "Callable[[str], None] | None"
    assert set(JudgeInput.model_fields) == {
        "prompt", "mode", "candidates", "critiques", "hints", "guidance", "goal",
    }  # fmt: skip
    text = workflow_toml("http://127.0.0.1:9/v1", PANEL, judge="judge-model",
                         fallback="fallback-judge", provider=PROVIDER)  # fmt: skip
    wf = parse_workflow(text, "t.toml")
    deps = FusionDeps(client=ModelClient(wf.client_settings), workflow=wf).judge_deps()
    assert deps is not None
    assert deps.primary.spec == f"{PROVIDER}:judge-model"
    assert deps.fallback is not None and deps.fallback.spec == f"{PROVIDER}:fallback-judge"


def self_judging(tmp_path: Path) -> Path:
    path = tmp_path / "self.toml"
    path.write_text(workflow_toml("http://127.0.0.1:9/v1", PANEL, judge="alpha-one",
                                  provider=PROVIDER))  # fmt: skip
    return path


async def test_self_judge_refused_by_fuse(tmp_path: Path) -> None:
    with pytest.raises(WorkflowFileError, match="judge model zzprov:alpha-one also sits on"):
        await fuse("q", workflow=self_judging(tmp_path))


def test_self_judge_refused_by_batch(tmp_path: Path) -> None:
    batch = tmp_path / "b.jsonl"
    batch.write_text('{"prompt": "q"}\n')
    out = runner.invoke(app, ["fuse", "--batch", str(batch), "-w", str(self_judging(tmp_path))])
    assert out.exit_code == EXIT_BAD_INPUT and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "allow_self_judge = true" in out.stderr


def test_self_judge_refused_by_goals(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    path = self_judging(tmp_path)
    out = runner.invoke(app, ["goal", "start", "q", "-w", str(path), "--db", db])
    assert out.exit_code == EXIT_BAD_INPUT and "also sits on the panel" in out.stderr
    with EvidenceStore(db) as store:
        assert GoalStore(store).all() == []  # refused before the goal was created
        with pytest.raises(WorkflowFileError, match="allow_self_judge"):
            Goal("q", workflow=str(path), store=store)


def test_self_judging_is_allowed_when_declared() -> None:
    assert load_workflow("self-fusion").allow_self_judge
    assert load_workflow("local").judge is not None
