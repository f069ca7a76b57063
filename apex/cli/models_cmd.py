"""``apex models`` and ``apex ask``: the configured providers, and one call to one model."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import httpx
import typer

from apex.cli.common import console, fail, guarded, print_json, run
from apex.cli.exits import failure_exit
from apex.errors import ApexError, MissingAPIKeyError
from apex.models import ChatRequest, ChatResult, ModelClient
from apex.models.local import DEMO_MODEL_NOTE
from apex.models.providers import provider_configs
from apex.workflow import Workflow, load_workflow

WorkflowOption = Annotated[
    str | None,
    typer.Option("--workflow", "-w", help="Workflow name or TOML path (declares providers)."),
]
REACH_TIMEOUT_S = 5.0


def _workflow(name: str | None, *, required: bool = False) -> Workflow | None:
    if name is None and not required:
        return None
    return load_workflow(name)


async def _reach(client: ModelClient, name: str) -> tuple[str, str]:
    """Whether provider ``name`` answers ``GET /models`` (status text, detail)."""
    try:
        provider = client.provider(name)
        provider.check_allowed()
    except MissingAPIKeyError:
        return "no key", f"set {provider_configs(client.settings.providers)[name].api_key_env}"
    except ApexError as exc:
        return "not configured", str(exc)
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(transport=provider.transport, timeout=REACH_TIMEOUT_S) as http:
            response = await http.get(f"{provider.base_url}/models", headers=provider.headers())
    except httpx.HTTPError as exc:
        return "unreachable", f"{provider.base_url}: {type(exc).__name__}"
    took = f"{(time.perf_counter() - started) * 1000:.0f} ms"
    if response.status_code >= 400:
        return "error", f"HTTP {response.status_code} from {provider.base_url}"
    return "reachable", took


@guarded
def models(workflow: WorkflowOption = None, json_out: bool = typer.Option(False, "--json")) -> None:
    """List configured providers and the workflow's models, checking each provider concurrently."""
    wf = _workflow(workflow)
    names = sorted(provider_configs(wf.providers if wf else None))

    async def check() -> list[tuple[str, str]]:
        async with ModelClient(wf.client_settings if wf else None) as client:
            return list(await asyncio.gather(*(_reach(client, n) for n in names)))

    status = run(check())
    used: dict[str, list[str]] = {n: [] for n in names}
    if wf is not None:
        specs = [m.model for m in wf.panel] + [c.model for c in wf.critics]
        specs += [wf.judge.model] if wf.judge else []
        for spec in dict.fromkeys(specs):
            used.setdefault(spec.partition(":")[0], []).append(spec)
    configs = provider_configs(wf.providers if wf else None)
    rows = [
        {
            "provider": n,
            "base_url": configs[n].base_url,
            "api_key_env": configs[n].api_key_env,
            "status": s,
            "detail": d,
            "models": used.get(n, []),
        }
        for n, (s, d) in zip(names, status, strict=True)
    ]
    if json_out:
        print_json(rows)
        return
    for row in rows:  # a few short lines per provider: readable at 80 columns, nothing cut
        state, detail = str(row["status"]), str(row["detail"])
        said = f"{state} ({detail})" if state == "reachable" else f"{state}: {detail}"
        console.print(f"{row['provider']:<11} {said}", markup=False, highlight=False)
        console.print(f"{'':<11} {row['base_url']}", markup=False, highlight=False)
        if row["models"]:
            listed = ", ".join(row["models"])
            console.print(f"{'':<11} models: {listed}", markup=False, highlight=False)
    console.print(f"[dim]local:smollm2 — {DEMO_MODEL_NOTE}[/dim]")


@guarded
def ask(
    model: Annotated[str, typer.Argument(help="provider:model, e.g. local:smollm2")],
    prompt: Annotated[str, typer.Argument(help="The prompt.")],
    workflow: WorkflowOption = None,
    max_tokens: Annotated[int | None, typer.Option(help="Cap on generated tokens.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """One call to one model: the answer, latency, tokens and cost."""
    wf = _workflow(workflow)

    async def call() -> ChatResult:
        async with ModelClient(wf.client_settings if wf else None) as client:
            request = ChatRequest.of(prompt, max_tokens=max_tokens, temperature=temperature)
            return await client.model(model).chat(request)

    result = run(call())
    if json_out:
        print_json(result.model_dump(mode="json") | {"tokens": result.usage.total_tokens})
        raise typer.Exit(0 if result.failure is None else failure_exit([result.failure.kind]))
    if result.failure is not None:
        fail(
            f"{model}: {result.failure.kind}: {result.failure.message}",
            failure_exit([result.failure.kind]),
        )
    console.print(result.text, markup=False, highlight=False)
    cost = "unknown" if result.cost_usd is None else f"${result.cost_usd:.6f}"
    console.print(
        f"[dim]{model} · {result.latency_s:.2f}s · {result.usage.total_tokens or '?'} tokens · "
        f"cost {cost}[/dim]"
    )
    if model.startswith("local:smollm2"):
        console.print(f"[dim]{DEMO_MODEL_NOTE}[/dim]")
