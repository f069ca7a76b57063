"""What ``apex serve`` adds to a fusion cycle: one request, and 64 at once.

The test server gives three panel members 1.0 s latency, one critic 0.3 s and the judge 0.5 s
(critical path 1.8 s). The test server, ``apex serve`` (SQLite store) and the measuring client
each run in their own process on loopback; the in-process baseline is ``apex.fuse`` of the same
workflow with its own SQLite store, so both select the panel by its record and record the run
with its evidence. Prints:

* one request's latency (median) over the in-process cycle's (target <= 1.03 x + 10 ms);
* 64 concurrent requests' total time over the critical path (target <= 1.2 x);
* a streamed request whose judge writes its verdict over its 0.5 s: when the first words of the
  answer arrive, and when all of it has;
* the same 64 cycles run in-process at once (what the core alone costs at that load), the CPU
  time ``apex serve``, the test server and the measuring client spent per cycle while the 64 were
  served, and the machine's load average (the figures are only as good as the cores the other
  processes leave free), and how long a pure-Python loop (``sum(range(10**8))``) takes here, so
  figures from machines of different speed can be set side by side.

The workflow's provider allows 256 calls in flight: the server shares one client, so a
provider's ``concurrency`` bounds the calls to it across all requests (192 panel calls here).

    .venv/bin/python benchmarks/serve.py [--runs 7] [--concurrent 64]

The measuring client spreads concurrent requests over several httpx clients (one per
``PER_CLIENT`` requests): httpx's connection pool does work quadratic in the requests it holds,
which would otherwise be measured instead of the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from apex.fusion import fuse
from apex.models import ModelClient
from apex.store import EvidenceStore
from apex.testing import Reply, TestServer, roles, workflow_toml
from apex.workflow import Workflow, parse_workflow

PANEL_S, CRITIC_S, JUDGE_S = 1.0, 0.3, 0.5
CRITICAL_PATH_S = PANEL_S + CRITIC_S + JUDGE_S
PROVIDER_CONCURRENCY = 256
PER_CLIENT = 8
QUESTION = "What is the answer?"
LONG_ANSWER = "The answer is B: " + "each step of the argument follows from the one before. " * 4
"""The streaming judge's answer (about 240 characters: 30 streamed pieces)."""
STREAM_PIECES = 80
"""About how many 8-character pieces the streaming judge's whole verdict takes."""
_ADDRESS = re.compile(r"apex serve: (http://\S+)/v1")


def workflow_text(base_url: str) -> str:
    text = workflow_toml(base_url, critics=["critic"], name="bench", settings="")
    line = f'base_url = "{base_url}"'
    return text.replace(line, f"{line}\nconcurrency = {PROVIDER_CONCURRENCY}")


def script(server: TestServer) -> None:
    for i in (1, 2, 3):
        server.default(f"m{i}", Reply(f"Answer {i}: The answer is B", latency=PANEL_S))
    server.default("critic", lambda body: Reply(roles.critic()(body), latency=CRITIC_S))
    server.default("judge", lambda body: Reply(roles.judge("B")(body), latency=JUDGE_S))
    pace = (JUDGE_S - 0.1) / STREAM_PIECES  # its verdict streams over the judge's 0.5 s
    server.default(
        "judge-stream",
        lambda body: Reply(roles.judge(LONG_ANSWER)(body), latency=0.1, token_delay=pace),
    )


async def in_process(wf: Workflow, client: ModelClient, store: EvidenceStore) -> float:
    started = time.perf_counter()
    result = await fuse(QUESTION, workflow=wf, client=client, store=store)
    elapsed = time.perf_counter() - started
    assert result.synthesis_path == "judge", result.synthesis_path
    return elapsed


async def local_together(wf: Workflow, client: ModelClient, store: EvidenceStore, n: int) -> float:
    """``n`` in-process cycles at once (what the core alone costs at that load)."""
    started = time.perf_counter()
    await asyncio.gather(*(in_process(wf, client, store) for _ in range(n)))
    return time.perf_counter() - started


async def request(http: httpx.AsyncClient) -> float:
    body = {"model": "apex/bench", "messages": [{"role": "user", "content": QUESTION}]}
    started = time.perf_counter()
    response = await http.post("/chat/completions", json=body)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    assert response.json()["apex"]["synthesis_path"] == "judge"
    return elapsed


async def streamed(http: httpx.AsyncClient) -> tuple[float, float]:
    """One streamed request to ``apex/bench-stream``: when its first answer text arrived, and
    when the stream ended."""
    body = {"model": "apex/bench-stream", "messages": [{"role": "user", "content": QUESTION}],
            "stream": True}  # fmt: skip
    started, first = time.perf_counter(), None
    async with http.stream("POST", "/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if first is None and '"content":"' in line and '"content":""' not in line:
                first = time.perf_counter() - started
    assert first is not None
    return first, time.perf_counter() - started


async def together(clients: list[httpx.AsyncClient], n: int) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(request(clients[i % len(clients)]) for i in range(n)))
    return time.perf_counter() - started


def cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) process ``pid`` has used (None where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def python_loop_s() -> float:
    """Seconds this machine takes for ``sum(range(10**8))`` (one core, pure Python)."""
    started = time.perf_counter()
    sum(range(10**8))
    return time.perf_counter() - started


def serve_test_server() -> None:
    """The scripted test server in this process until stdin closes (``--test-server``)."""
    with TestServer() as server:
        script(server)
        print(server.base_url, flush=True)
        sys.stdin.read()


def start_test_server() -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, __file__, "--test-server"]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def start_server(home: Path, concurrent: int) -> tuple[subprocess.Popen[bytes], str]:
    out = home / "serve.out"
    command = [
        sys.executable, "-m", "apex.cli.main", "serve", "--port", "0",
        "--workflows", str(home / "workflows"), "--db", f"sqlite:///{home / 'serve.db'}",
        "--max-concurrent", str(concurrent),
    ]  # fmt: skip
    env = os.environ | {"APEX_HOME": str(home / "apex-home")}
    with out.open("wb") as stdout:
        proc = subprocess.Popen(command, stdout=stdout, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while not (found := _ADDRESS.search(out.read_text())):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"apex serve did not start: {out.read_text()}")
        time.sleep(0.05)
    return proc, f"{found.group(1)}/v1"


async def main(runs: int, concurrent: int) -> None:
    provider, base_url = start_test_server()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "workflows").mkdir()
        text = workflow_text(base_url)
        (home / "workflows" / "bench.toml").write_text(text)
        stream_text = workflow_toml(base_url, critics=["critic"], judge="judge-stream",
                                    name="bench-stream", settings="")  # fmt: skip
        (home / "workflows" / "bench-stream.toml").write_text(stream_text)
        wf = parse_workflow(text, "bench.toml")
        with EvidenceStore(f"sqlite:///{home / 'inprocess.db'}") as store:
            async with ModelClient(wf.client_settings) as client:
                await in_process(wf, client, store)  # warm-up: graph, connections, store
                local = [await in_process(wf, client, store) for _ in range(runs)]
                rounds = max(3, runs // 2)
                local_crowd = [
                    await local_together(wf, client, store, concurrent) for _ in range(rounds)
                ]
        proc, url = start_server(home, concurrent)
        clients = [httpx.AsyncClient(base_url=url, timeout=120)
                   for _ in range(-(-concurrent // PER_CLIENT))]  # fmt: skip
        try:
            await together(clients, concurrent)  # warm-up: every connection, both sides
            served = [await request(clients[0]) for _ in range(runs)]
            before, provider_before = cpu_s(proc.pid), cpu_s(provider.pid)
            own_before = time.process_time()
            crowd = [await together(clients, concurrent) for _ in range(rounds)]
            after, provider_after = cpu_s(proc.pid), cpu_s(provider.pid)
            own = time.process_time() - own_before
            streams = [await streamed(clients[0]) for _ in range(runs)]
        finally:
            for http in clients:
                await http.aclose()
            proc.terminate()
            proc.wait(30)
            provider.communicate()
    base, one, many = statistics.median(local), statistics.median(served), min(crowd)
    target = 1.03 * base + 0.010
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} cores")
    print(f"pure-Python loop, sum(range(10**8)): {python_loop_s():.2f} s")
    print(f"critical path                      {CRITICAL_PATH_S:.3f} s")
    print(f"in-process apex.fuse (median of {runs})  {base:.3f} s")
    print(f"apex serve, one request (median)   {one:.3f} s  (target <= {target:.3f} s)")
    print(f"  ratio served / in-process        {one / base:.3f}  ({1000 * (one - base):+.0f} ms)")
    print(f"apex serve, {concurrent} concurrent (best of {len(crowd)})  {many:.3f} s")
    print(f"  ratio {concurrent} concurrent / critical path  {many / CRITICAL_PATH_S:.3f}"
          "  (target <= 1.2)")  # fmt: skip
    print(f"  median of {len(crowd)}                     {statistics.median(crowd):.3f} s")
    print(f"in-process apex.fuse, {concurrent} concurrent (best, median of {rounds})  "
          f"{min(local_crowd):.3f} s, {statistics.median(local_crowd):.3f} s")  # fmt: skip
    first = statistics.median(f for f, _ in streams)
    done = statistics.median(d for _, d in streams)
    print(f"streamed, the judge writing over its {JUDGE_S:g} s (median of {runs}): first answer "
          f"text after {first:.3f} s, the whole answer after {done:.3f} s")  # fmt: skip
    if before is not None and after is not None:
        per_cycle = (after - before) / (len(crowd) * concurrent)
        print(f"  apex serve CPU per cycle         {1000 * per_cycle:.1f} ms")
    if provider_before is not None and provider_after is not None:
        cycles = len(crowd) * concurrent
        provider_ms = 1000 * (provider_after - provider_before) / cycles
        print(f"  test server CPU per cycle        {provider_ms:.1f} ms"
              f", measuring client {1000 * own / cycles:.1f} ms")  # fmt: skip
    ok = one <= target and many <= 1.2 * CRITICAL_PATH_S
    print("within targets" if ok else "OVER TARGET")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--concurrent", type=int, default=64)
    parser.add_argument("--test-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.test_server:
        serve_test_server()
    else:
        asyncio.run(main(args.runs, args.concurrent))
