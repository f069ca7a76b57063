"""How much the fusion cycle adds on top of its critical path, and over a hand-written baseline.

The test server gives three panel members 1.0 s latency, one critic 0.3 s and the judge 0.5 s,
so the critical path is 1.8 s. The baseline makes the same calls with ``asyncio.gather`` and
httpx directly. Prints cycle time / critical path and cycle time / baseline (medians).

    .venv/bin/python benchmarks/fusion_overhead.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from apex.fusion import fuse
from apex.models import ModelClient
from apex.testing import Reply, TestServer, roles, workflow_toml
from apex.workflow import Workflow, parse_workflow

PANEL_S, CRITIC_S, JUDGE_S = 1.0, 0.3, 0.5
CRITICAL_PATH_S = PANEL_S + CRITIC_S + JUDGE_S
BOUND = "1.05 x critical path + 50 ms"


def workflow(base_url: str) -> Workflow:
    text = workflow_toml(base_url, critics=["critic"], name="bench", settings="")
    return parse_workflow(text, "bench.toml")


def script(server: TestServer) -> None:
    for i in (1, 2, 3):
        server.default(f"m{i}", Reply(f"Answer {i}: The answer is B", latency=PANEL_S))
    server.default("critic", lambda body: Reply(roles.critic()(body), latency=CRITIC_S))
    server.default("judge", lambda body: Reply(roles.judge("B")(body), latency=JUDGE_S))


async def baseline(base_url: str) -> float:
    """The same five calls, hand-written: gather the panel, then critic, then judge."""
    judge_body = roles.judge("B")

    async with httpx.AsyncClient(timeout=30) as http:

        async def call(model: str, extra: dict[str, object] | None = None) -> str:
            body = {"model": model, "messages": [{"role": "user", "content": "q"}]} | (extra or {})
            response = await http.post(f"{base_url}/chat/completions", json=body)
            return str(response.json()["choices"][0]["message"]["content"])

        started = time.perf_counter()
        await asyncio.gather(*(call(f"m{i}") for i in (1, 2, 3)))
        await call("critic")
        schema = {"properties": {"scores": {"items": {"properties": {"label": {"enum": ["A"]}}}}}}
        await call("judge", {"response_format": {"json_schema": {"schema": schema}}})
        assert judge_body
        return time.perf_counter() - started


async def cycle(wf: Workflow) -> float:
    async with ModelClient(wf.client_settings) as client:
        started = time.perf_counter()
        result = await fuse("What is the answer?", workflow=wf, client=client)
        elapsed = time.perf_counter() - started
    assert result.synthesis_path == "judge", result.synthesis_path
    return elapsed


async def main(runs: int) -> None:
    with TestServer() as server:
        script(server)
        wf = workflow(server.base_url)
        await cycle(wf)  # warm-up: imports, graph compilation, first connections
        await baseline(server.base_url)
        cycles = [await cycle(wf) for _ in range(runs)]
        bases = [await baseline(server.base_url) for _ in range(runs)]
    cyc, base = statistics.median(cycles), statistics.median(bases)
    limit = 1.05 * CRITICAL_PATH_S + 0.05
    print(f"critical path        {CRITICAL_PATH_S:.3f} s")
    print(f"fusion cycle (median) {cyc:.3f} s  over {runs} runs (bound {BOUND} = {limit:.3f} s)")
    print(f"asyncio+httpx baseline {base:.3f} s")
    print(f"ratio cycle/critical path  {cyc / CRITICAL_PATH_S:.3f}")
    print(f"ratio cycle/baseline       {cyc / base:.3f}")
    print("within bound" if cyc <= limit else "OVER BOUND")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
