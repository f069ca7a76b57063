"""``apex fuse``: one fusion cycle with live progress, or a JSONL batch of them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from apex.cli.common import EXIT_NOT_RECORDED, console, fail, guarded, print_json, print_line, run
from apex.errors import ConfigError, RunNotRecorded
from apex.fusion import FusionEvent, check_workflow, fuse, resolve_workflow
from apex.graph.types import Analysis, Candidate, FusionResult
from apex.models.client import ModelClient
from apex.models.local import DEMO_MODEL_NOTE
from apex.store import EvidenceStore
from apex.workflow import MAX_OPTIONS, Workflow, not_utf8

DEFAULT_BATCH_CONCURRENCY = 4


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _models(option: str, value: str | None) -> list[str] | None:
    """A comma-separated model list given to ``option``; '' (or only commas) is refused."""
    if value is None:
        return None
    models = _split(value)
    if not models:
        fail(f"{option} {value!r}: give at least one provider:model, comma-separated")
    return models


def result_json(result: FusionResult) -> dict[str, Any]:
    """The ``--json`` shape of a result."""
    data = result.model_dump(mode="json", exclude={"calls", "critiques", "prompt"})
    data["critiques"] = [c.model_dump(mode="json", exclude={"call"}) for c in result.critiques]
    data["calls"] = [c.model_dump(mode="json") for c in result.calls]
    return data


class _Progress:
    """A live table of panel members while the cycle runs."""

    def __init__(self, workflow: Workflow) -> None:
        self.rows: dict[int, tuple[str, str, str]] = {
            i: (m.model, "running", "") for i, m in enumerate(workflow.panel)
        }
        self.stage = "panel answering"

    def table(self) -> Table:
        table = Table("#", "model", "status", "latency", title=self.stage, title_justify="left")
        for i, (model, status, latency) in sorted(self.rows.items()):
            table.add_row(str(i + 1), model, status, latency)
        return table

    def update(self, event: FusionEvent) -> None:
        if event.kind == "candidate":
            cand: Candidate = event.data
            status = "ok" if cand.ok else f"failed: {cand.failure.kind if cand.failure else '?'}"
            self.rows[cand.member] = (cand.model, status, f"{cand.call.latency_s:.2f}s")
            if all(r[1] != "running" for r in self.rows.values()):
                self.stage = "critics and judge"
        elif event.kind == "critique":
            self.stage = "judge"
        elif event.kind == "judge":
            self.stage = "synthesizing"


def _show(result: FusionResult) -> None:
    ok = result.ok
    console.print(
        Panel(
            Text(result.answer or "(no answer)"),  # a model's text, never console markup
            title=f"answer · {result.synthesis_path}",
            border_style="green" if ok else "red",
        )
    )
    analysis = result.analysis
    no_points = "(none)" if result.judge_model else "(no judge verdict)"
    for name in Analysis.model_fields:
        console.print(f"[bold]{name.replace('_', ' ')}[/bold]")
        for point in getattr(analysis, name) or [no_points]:
            console.print(f"  • {point}", markup=False, highlight=False)
    table = Table(
        "role", "label", "model", "ok", "score", "latency", "tokens", "cost", title="calls"
    )
    labels = {c.member: c.label or "-" for c in result.candidates}
    scores: dict[int | None, float | None] = {c.member: c.score for c in result.candidates}
    for call in result.calls:
        tokens = (
            "?"
            if call.prompt_tokens is None or call.completion_tokens is None
            else str(call.prompt_tokens + call.completion_tokens)
        )
        table.add_row(
            call.role,
            labels.get(call.member, "-") if call.member is not None else "-",
            call.model,
            "yes" if call.ok else (call.failure_kind or "no"),
            "-" if (score := scores.get(call.member)) is None else f"{score:.2f}",
            f"{call.latency_s:.2f}s",
            tokens,
            "?" if call.cost_usd is None else f"${call.cost_usd:.6f}",
        )
    console.print(table)
    cost = "unknown" if result.cost_usd is None else f"${result.cost_usd:.6f}"
    console.print(f"[dim]run {result.run_id} · {result.latency_s:.2f}s · cost {cost}[/dim]")


def _batch_lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: {not_utf8(data, exc)}") from None


def _check_item(item: Any, where: str) -> dict[str, Any]:
    """A batch line's object, its fields checked; a ConfigError naming the line otherwise."""
    if not isinstance(item, dict) or not isinstance(item.get("prompt"), str):
        raise ConfigError(f'{where}: each line needs a "prompt" string')
    if not item["prompt"].strip():
        raise ConfigError(f'{where}: "prompt" is empty; give the question to fuse')
    category = item.get("category")
    if category is not None and (not isinstance(category, str) or not category.strip()):
        raise ConfigError(
            f'{where}: "category" must be a non-empty string (got {json.dumps(category)}); '
            'quote it, e.g. "category": "math"'
        )
    for key in ("id", "expected"):
        value = item.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            raise ConfigError(
                f'{where}: "{key}" must be a string or a whole number (got {json.dumps(value)})'
            )
    options = item.get("n_options")
    if options is not None and (type(options) is not int or not 2 <= options <= MAX_OPTIONS):
        raise ConfigError(f'{where}: "n_options" must be a whole number from 2 to {MAX_OPTIONS}')
    return item


def read_batch(path: Path) -> list[dict[str, Any]]:
    """The items of a batch file: JSON lines with a "prompt" (and "id", "category", "expected",
    "n_options"), in UTF-8; every bad line is refused with one line naming it."""
    items: list[dict[str, Any]] = []
    for number, line in enumerate(_batch_lines(path), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise ConfigError(f"{path}:{number}: not a JSON object") from None
        item = _check_item(item, f"{path}:{number}")
        item["id"] = str(item.get("id", number))
        items.append(item)
    return items


async def kept(coro: Coroutine[Any, Any, FusionResult]) -> tuple[FusionResult, str | None]:
    """The result of a fusion, and why its run was not recorded (None when it was): a store
    that fails after the panel answered never costs the answer."""
    try:
        return await coro, None
    except RunNotRecorded as exc:
        return exc.result, str(exc)


async def _batch(
    items: list[dict[str, Any]],
    workflow: Workflow,
    concurrency: int,
    category: str | None,
    store: EvidenceStore | None,
) -> tuple[int, list[str]]:
    """Fuse every item, printing one JSON line each; the failed count and the store errors."""
    gate = asyncio.Semaphore(concurrency)
    failures = 0
    unrecorded: list[str] = []
    async with ModelClient(workflow.client_settings) as client:
        check_workflow(workflow, client)

        async def one(item: dict[str, Any]) -> None:
            nonlocal failures
            async with gate:
                expected = item.get("expected")
                result, not_recorded = await kept(
                    fuse(
                        item["prompt"],
                        workflow=workflow,
                        client=client,
                        category=item.get("category") or category,
                        store=store,
                        expected=None if expected is None else str(expected),
                        n_options=item.get("n_options"),
                    )
                )
            failures += not result.ok
            line = {"id": item["id"], "expected": item.get("expected")} | result_json(result)
            if not_recorded is not None:
                unrecorded.append(not_recorded)
                line |= {"recorded": False, "store_error": not_recorded}
            print_line(json.dumps(line))

        await asyncio.gather(*(one(item) for item in items))
    return failures, unrecorded


@guarded
def fuse_command(
    prompt: Annotated[str | None, typer.Argument(help="The prompt (omit with --batch).")] = None,
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Workflow name or TOML path.")
    ] = None,
    panel: Annotated[str | None, typer.Option(help="Comma-separated panel models.")] = None,
    judge: Annotated[str | None, typer.Option(help="Judge model.")] = None,
    critic: Annotated[
        str | None, typer.Option(help="Comma-separated critic models ('' for none).")
    ] = None,
    category: Annotated[str | None, typer.Option(help="Task category for evidence.")] = None,
    batch: Annotated[
        Path | None,
        typer.Option(
            help='JSONL file of {"id", "prompt", "category"?, "expected"?, "n_options"?}.'
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Fusions in flight with --batch.")
    ] = DEFAULT_BATCH_CONCURRENCY,
    n_options: Annotated[
        int | None,
        typer.Option(
            min=2, max=MAX_OPTIONS, help="The question's number of options (else counted)."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    db: Annotated[
        str | None, typer.Option(help="Evidence store URL (else APEX_DB, workflow db, default).")
    ] = None,
    record: Annotated[
        bool, typer.Option(help="Read weights from and record evidence to the store.")
    ] = True,
) -> None:
    """Fuse a panel's answers: parallel panel, critics, blind judge, synthesis."""
    critics = [] if critic == "" else _split(critic)  # --critic '' removes the critics
    if judge is not None and not judge.strip():
        fail("--judge '': give the judge as provider:model, or leave --judge out")
    models = _models("--panel", panel)
    wf = resolve_workflow(workflow, panel=models, judge=judge, critics=critics)
    if batch is None and not (prompt or "").strip():
        fail("give a PROMPT, or --batch FILE.jsonl")
    if category is not None and not category.strip():
        fail("--category '': give a category name, or leave --category out")
    store = EvidenceStore(db, workflow_db=wf.db) if record else None
    try:
        if batch is not None:
            failed, unrecorded = run(_batch(read_batch(batch), wf, concurrency, category, store))
            if unrecorded:
                fail(
                    f"{len(unrecorded)} run(s) were not recorded (each line says why); the first: "
                    f"{unrecorded[0]}",
                    code=EXIT_NOT_RECORDED,
                )
            raise typer.Exit(1 if failed else 0)
        assert prompt is not None
        if json_out:
            result, not_recorded = run(
                kept(fuse(prompt, workflow=wf, category=category, store=store, n_options=n_options))
            )
            data = result_json(result)
            print_json(data | ({"recorded": False} if not_recorded is not None else {}))
        else:
            progress = _Progress(wf)
            with Live(progress.table(), console=console, transient=True) as live:

                def on_event(event: FusionEvent) -> None:
                    progress.update(event)
                    live.update(progress.table())

                result, not_recorded = run(
                    kept(
                        fuse(
                            prompt,
                            workflow=wf,
                            category=category,
                            on_event=on_event,
                            store=store,
                            n_options=n_options,
                        )
                    )
                )
            _show(result)
            if any(c.model.startswith("local:smollm2") for c in result.candidates):
                console.print(f"[dim]{DEMO_MODEL_NOTE}[/dim]")
        if not_recorded is not None:
            fail(not_recorded, code=EXIT_NOT_RECORDED)
        if not result.ok:
            raise typer.Exit(1)
    finally:
        if store is not None:
            store.close()
