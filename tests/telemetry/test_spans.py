"""The spans of a fusion cycle and of a goal, read from the SDK's in-memory exporter.

A fusion cycle over real HTTP on loopback (one panel member answers 500): one trace, the fusion
span at its root, a ``chat`` span per model call with the GenAI attributes and ``error.type`` on
the failed one. A two-cycle goal: one trace per cycle, ``goal_cycle`` > ``fusion`` > ``chat``.
With tracing off, no span is made at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from apex import telemetry
from apex.fusion import fuse
from apex.goals.runner import Goal
from apex.goals.types import Limits
from apex.store import EvidenceStore
from apex.telemetry.setup import EXPORTER_ENVS
from apex.testing import Fail, InProcessServer, Reply, TestServer, roles, workflow_toml
from apex.workflow import parse_workflow


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Spans go to memory for the test (APEX's own provider, not the process-global one)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    telemetry.configure(provider)
    try:
        yield memory
    finally:
        telemetry.reset()
        provider.shutdown()


def by_name(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def script_cycle(server: TestServer | InProcessServer) -> None:
    server.default("m1", Reply("The answer is 42", prompt_tokens=11, completion_tokens=7))
    server.default("m2", Fail(500))
    server.default("m3", Reply("It is 42", cost=0.002))
    server.default("critic", roles.critic())
    server.default("judge", roles.judge("42"))


async def test_a_fusion_cycle_with_one_failed_panel_call(
    server: TestServer, exporter: InMemorySpanExporter
) -> None:
    script_cycle(server)
    wf = parse_workflow(workflow_toml(server.base_url, critics=["critic"]), "lab.toml")
    result = await fuse("What is 6 x 7?", workflow=wf, category="math", run_id="run-1")
    assert result.synthesis_path == "judge"
    spans = exporter.get_finished_spans()
    (cycle,) = by_name(spans, "fusion ")
    chats = by_name(spans, "chat ")
    assert cycle.name == "fusion lab" and cycle.parent is None
    assert len(spans) == 1 + len(chats) and len(chats) == len(result.calls) == 5
    assert {c.context.trace_id for c in chats} == {cycle.context.trace_id}
    assert {parent_of(c) for c in chats} == {cycle.context.span_id}
    assert cycle.attributes["apex.run_id"] == "run-1"
    assert cycle.attributes["apex.synthesis_path"] == "judge"
    assert cycle.attributes["apex.panel.failed"] == 1
    assert cycle.status.status_code is StatusCode.UNSET

    roles_seen = sorted(str(c.attributes["apex.role"]) for c in chats)
    assert roles_seen == ["critic", "judge", "panel", "panel", "panel"]
    by_model = {c.attributes["gen_ai.request.model"]: c for c in chats}
    m1, m2, m3 = by_model["m1"], by_model["m2"], by_model["m3"]
    assert m1.name == "chat m1"
    assert m1.attributes["gen_ai.operation.name"] == "chat"
    assert m1.attributes["gen_ai.provider.name"] == "lab"
    assert m1.attributes["gen_ai.response.model"] == "m1"
    assert m1.attributes["gen_ai.usage.input_tokens"] == 11
    assert m1.attributes["gen_ai.usage.output_tokens"] == 7
    assert m1.attributes["apex.run_id"] == "run-1" and m1.attributes["apex.model"] == "lab:m1"
    assert m1.attributes["server.address"] == "127.0.0.1"
    assert "error.type" not in m1.attributes and m1.status.status_code is StatusCode.UNSET
    assert m3.attributes["apex.cost_usd"] == pytest.approx(0.002)
    # the failed call: its typed failure kind, an error status, no usage
    assert m2.attributes["error.type"] == "http_error"
    assert m2.status.status_code is StatusCode.ERROR
    assert "HTTP 500" in str(m2.status.description)
    assert "gen_ai.usage.input_tokens" not in m2.attributes
    judge = by_model["judge"]
    assert judge.attributes["apex.role"] == "judge"
    assert judge.attributes["gen_ai.output.type"] == "json"
    # content is opt-in: none by default
    assert not any("gen_ai.input.messages" in c.attributes for c in chats)


async def test_content_only_on_opt_in(inproc: InProcessServer, tmp_path: Path) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    telemetry.configure(provider, content=True)
    try:
        script_cycle(inproc)
        wf = parse_workflow(workflow_toml(inproc.base_url), "lab.toml")
        await fuse("What is 6 x 7?", workflow=wf)
    finally:
        telemetry.reset()
    (m1,) = [s for s in memory.get_finished_spans() if s.name == "chat m1"]
    sent = json.loads(str(m1.attributes["gen_ai.input.messages"]))
    assert sent[-1]["role"] == "user" and "6 x 7" in sent[-1]["parts"][0]["content"]
    answered = json.loads(str(m1.attributes["gen_ai.output.messages"]))
    assert answered[0]["parts"][0]["content"] == "The answer is 42"


async def test_a_two_cycle_goal(
    inproc: InProcessServer, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    for model in ("m1", "m2", "m3"):
        inproc.default(model, Reply("the answer is 41"))
    inproc.default("judge", roles.judge("41", goal_met=False, blocker="no data"))
    path = tmp_path / "goal.toml"
    path.write_text(workflow_toml(inproc.base_url))
    store = EvidenceStore(f"sqlite:///{tmp_path / 'apex.db'}")
    goal = Goal("Reach 42", workflow=str(path), store=store, limits=Limits(max_cycles=2))
    status = await goal.run()
    assert len(status.cycles) == 2
    spans = exporter.get_finished_spans()
    cycles = sorted(by_name(spans, "goal_cycle"), key=lambda s: s.attributes["apex.goal.cycle"])
    fusions = by_name(spans, "fusion ")
    chats = by_name(spans, "chat ")
    assert len(cycles) == 2 and len(fusions) == 2 and len(chats) == 2 * 4
    assert len(spans) == len(cycles) + len(fusions) + len(chats)
    for number, cycle in enumerate(cycles, start=1):
        assert cycle.parent is None  # each cycle is a trace of its own
        assert cycle.attributes["apex.goal_id"] == goal.id
        assert cycle.attributes["apex.goal.cycle"] == number
        assert cycle.attributes["apex.goal.blocker"] == "no data"
        (fusion,) = [f for f in fusions if parent_of(f) == cycle.context.span_id]
        run_id = f"{goal.id}-c{number}"
        assert fusion.attributes["apex.run_id"] == run_id
        assert fusion.attributes["apex.goal_id"] == goal.id
        inside = [c for c in chats if parent_of(c) == fusion.context.span_id]
        assert len(inside) == 4
        assert {c.context.trace_id for c in inside} == {cycle.context.trace_id}
        assert {c.attributes["apex.run_id"] for c in inside} == {run_id}
        assert {c.attributes["apex.goal_id"] for c in inside} == {goal.id}
        assert sorted(str(c.attributes["apex.role"]) for c in inside) == [
            "judge",
            "panel",
            "panel",
            "panel",
        ]
    statuses = [c.attributes["apex.goal.status"] for c in cycles]
    # the limit is found when the third cycle is planned: both cycles ended "active"
    assert statuses == ["active", "active"] and status.state == "budget_limited"
    assert cycles[0].context.trace_id != cycles[1].context.trace_id
    store.close()


def test_tracing_off_makes_no_span(
    inproc: InProcessServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no provider configured nothing is traced: no tracer of the SDK or the API is asked
    for a span during a whole cycle."""
    from opentelemetry import trace
    from opentelemetry.sdk import trace as sdk_trace

    telemetry.reset()
    assert telemetry.tracer() is None and not telemetry.enabled()
    started: list[str] = []
    for cls in (sdk_trace.Tracer, trace.NoOpTracer, trace.ProxyTracer):
        original = cls.start_span

        def spy(self: object, name: str, *args: object, _o: Any = original, **kw: object) -> object:
            started.append(name)
            return _o(self, name, *args, **kw)

        monkeypatch.setattr(cls, "start_span", spy)
    script_cycle(inproc)
    wf = parse_workflow(workflow_toml(inproc.base_url), "lab.toml")
    with telemetry.scope(goal_id="g") as made:
        assert made is None
    result = asyncio.run(fuse("What is 6 x 7?", workflow=wf))
    assert result.ok and started == [] and telemetry.current_scope() is None


def test_on_with_the_standard_variables(tmp_path: Path) -> None:
    """``OTEL_TRACES_EXPORTER=console`` alone turns tracing on: a fresh process's cycle is
    exported (at exit) with its chat spans (``OTEL_SDK_DISABLED``: see the next test)."""
    script = (
        "import asyncio\n"
        "from apex.fusion import fuse\n"
        "from apex.telemetry.setup import setup_from_env\n"
        "from apex.testing import InProcessServer, roles, workflow_toml\n"
        "from apex.workflow import parse_workflow\n"
        "print('provider:', setup_from_env() is not None)\n"
        "with InProcessServer(default=lambda b: 'x') as srv:\n"
        "    srv.default('judge', roles.judge('42'))\n"
        "    wf = parse_workflow(workflow_toml(srv.base_url), 'lab.toml')\n"
        "    assert asyncio.run(fuse('q', workflow=wf)).ok\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "apex-test"}
    run = [sys.executable, "-c", script]
    out = subprocess.run(run, capture_output=True, text=True, env=env, check=True, cwd=tmp_path)
    assert "provider: True" in out.stdout
    assert out.stdout.count('"name": "chat m') == 3 and '"name": "fusion lab"' in out.stdout
    assert '"service.name": "apex-test"' in out.stdout


def test_wanted_reads_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from apex.telemetry.setup import wanted

    for name in ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", *EXPORTER_ENVS):
        monkeypatch.delenv(name, raising=False)
    assert not wanted() and wanted(True)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert wanted()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert not wanted() and wanted(True)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not wanted(True)


async def test_a_call_cancelled_mid_flight_ends_its_span(
    inproc: InProcessServer, exporter: InMemorySpanExporter
) -> None:
    inproc.default("m1", Reply("late", latency=5.0))
    wf = parse_workflow(workflow_toml(inproc.base_url, panel=("m1",)), "lab.toml")
    cycle = asyncio.create_task(fuse("What is 6 x 7?", workflow=wf))
    for _ in range(500):  # until the call is in flight (at most 5 s)
        if inproc.requests:
            break
        await asyncio.sleep(0.01)
    cycle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cycle
    (m1,) = by_name(exporter.get_finished_spans(), "chat m1")
    assert m1.attributes["error.type"] == "cancelled"
    assert m1.status.status_code is StatusCode.ERROR
