"""``apex fuse``: one fusion cycle with live progress, or a JSONL batch of them.

Heavy imports (the graph, the store, the client) happen inside the command, so ``apex fuse
--help`` and every other command start fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from apex.cli.common import EXIT_NOT_RECORDED, bad_input, fail, guarded, print_json, run
from apex.cli.exits import failure_exit

if TYPE_CHECKING:
    from apex.graph.types import FusionResult

MAX_OPTIONS = 26
"""The most options a choice question may have (``apex.workflow.MAX_OPTIONS``)."""
DEFAULT_BATCH_CONCURRENCY = 4


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _models(option: str, value: str | None) -> list[str] | None:
    """A comma-separated model list given to ``option``; '' (or only commas) is refused."""
    if value is None:
        return None
    models = _split(value)
    if not models:
        bad_input(f"{option} {value!r}: give at least one provider:model, comma-separated")
    return models


def result_json(result: FusionResult) -> dict[str, Any]:
    """The ``--json`` shape of a result."""
    data = result.model_dump(mode="json", exclude={"calls", "critiques", "prompt"})
    data["critiques"] = [c.model_dump(mode="json", exclude={"call"}) for c in result.critiques]
    data["calls"] = [c.model_dump(mode="json") for c in result.calls]
    return data


def read_prompt(prompt: str | None, prompt_file: Path | None) -> str | None:
    """The prompt: the argument, ``-`` for standard input, or ``--prompt-file``'s text."""
    if prompt_file is not None:
        if prompt is not None:
            bad_input("give the prompt as an argument or with --prompt-file, not both")
        try:
            return prompt_file.read_text(encoding="utf-8-sig")
        except OSError as exc:
            bad_input(f"--prompt-file {prompt_file}: cannot read: {exc.strerror}")
        except UnicodeDecodeError:
            bad_input(f"--prompt-file {prompt_file}: not UTF-8 text; save it as UTF-8")
    if prompt == "-":
        return sys.stdin.read()
    return prompt


@guarded
def fuse_command(
    prompt: Annotated[
        str | None, typer.Argument(help="The prompt; - reads it from stdin (omit with --batch).")
    ] = None,
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
    prompt_file: Annotated[
        Path | None, typer.Option("--prompt-file", help="Read the prompt from this file.")
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
    from apex.cli.fuse_batch import kept, read_batch, run_batch
    from apex.cli.stores import open_store
    from apex.fusion import fuse, resolve_workflow

    critics = [] if critic == "" else _split(critic)  # --critic '' removes the critics
    if judge is not None and not judge.strip():
        bad_input("--judge '': give the judge as provider:model, or leave --judge out")
    if batch is not None and (prompt is not None or prompt_file is not None):
        bad_input("give a PROMPT or --batch FILE.jsonl, not both (the batch holds the prompts)")
    text = read_prompt(prompt, prompt_file)
    models = _models("--panel", panel)
    wf = resolve_workflow(workflow, panel=models, judge=judge, critics=critics)
    if batch is None and not (text or "").strip():
        bad_input("give a PROMPT (- reads stdin), --prompt-file F, or --batch FILE.jsonl")
    if category is not None and not category.strip():
        bad_input("--category '': give a category name, or leave --category out")
    items = read_batch(batch) if batch is not None else []
    store = open_store(db, wf.db, write=True) if record else None
    try:
        if batch is not None:
            results, unrecorded = run(run_batch(items, wf, concurrency, category, store))
            if unrecorded:
                fail(
                    f"{len(unrecorded)} run(s) were not recorded (each line says why); the first: "
                    f"{unrecorded[0]}",
                    code=EXIT_NOT_RECORDED,
                )
            failed = [r for r in results if not r.ok]
            raise typer.Exit(_failed_exit(failed) if failed else 0)
        assert text is not None
        if json_out:
            result, not_recorded = run(
                kept(fuse(text, workflow=wf, category=category, store=store, n_options=n_options))
            )
            data = result_json(result)
            print_json(data | ({"recorded": False} if not_recorded is not None else {}))
        else:
            result, not_recorded = _fuse_live(text, wf, category, store, n_options)
        if not_recorded is not None:
            fail(not_recorded, code=EXIT_NOT_RECORDED)
        if not result.ok:
            raise typer.Exit(_failed_exit([result]))
    finally:
        if store is not None:
            store.close()


def _failed_exit(results: list[FusionResult]) -> int:
    """Unreachable when every failed panel call of these results was a connection failure."""
    kinds = [c.failure_kind or "" for r in results for c in r.calls if not c.ok]
    return failure_exit(kinds)


def _fuse_live(
    text: str, wf: Any, category: str | None, store: Any, n_options: int | None
) -> tuple[FusionResult, str | None]:
    """One cycle with a live table of the panel, then the result screen."""
    from rich.live import Live

    from apex.cli.common import console
    from apex.cli.fuse_batch import kept
    from apex.cli.fuse_show import LiveProgress, show_result
    from apex.fusion import FusionEvent, fuse
    from apex.models.local import DEMO_MODEL_NOTE

    progress = LiveProgress(wf)
    with Live(progress.view(), console=console, transient=True) as live:

        def on_event(event: FusionEvent) -> None:
            progress.update(event)
            live.update(progress.view())

        def on_answer(answer: str) -> None:
            progress.write(answer)
            live.update(progress.view())

        result, not_recorded = run(
            kept(
                fuse(
                    text,
                    workflow=wf,
                    category=category,
                    on_event=on_event,
                    on_answer=on_answer,
                    store=store,
                    n_options=n_options,
                )
            )
        )
    show_result(result)
    if any(c.model.startswith("local:smollm2") for c in result.candidates):
        console.print(f"[dim]{DEMO_MODEL_NOTE}[/dim]")
    return result, not_recorded
