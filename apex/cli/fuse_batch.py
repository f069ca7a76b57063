"""``apex fuse --batch``: a JSONL file of items, one JSON line out per item as it finishes.

Each output line carries ``correct`` (true | false | null): whether the final answer matches
the item's ``expected`` answer by the workflow's extraction (free text by normalized
containment), null without an expected answer or without a final answer. On a terminal, a
progress bar runs on stderr; piped, stderr stays silent and stdout holds only the JSON lines.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apex.cli.common import print_line
from apex.cli.progress import TerminalBar
from apex.errors import ConfigError, RunNotRecorded
from apex.workflow import MAX_OPTIONS, not_utf8

if TYPE_CHECKING:
    from apex.graph.types import FusionResult
    from apex.store import EvidenceStore
    from apex.workflow import Workflow


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
    "n_options"), in UTF-8; every bad line, and a file with no items, is refused in one line."""
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
    if not items:
        raise ConfigError(
            f'{path}: no items; give one JSON object per line, e.g. {{"id": "q1", "prompt": "..."}}'
        )
    return items


async def kept(coro: Coroutine[Any, Any, FusionResult]) -> tuple[FusionResult, str | None]:
    """The result of a fusion, and why its run was not recorded (None when it was): a store
    that fails after the panel answered never costs the answer."""
    try:
        return await coro, None
    except RunNotRecorded as exc:
        return exc.result, str(exc)


def correct(result: FusionResult, expected: str | int | None, workflow: Workflow) -> bool | None:
    """Whether the final answer is the expected one (None: nothing to compare)."""
    from apex.vote import extract, same_answer

    if expected is None or not result.ok:
        return None
    config = workflow.extraction
    final = result.answer_extracted or extract(result.answer, config)
    return same_answer(final, str(expected), config)


async def run_batch(
    items: list[dict[str, Any]],
    workflow: Workflow,
    concurrency: int,
    category: str | None,
    store: EvidenceStore | None,
) -> tuple[list[FusionResult], list[str]]:
    """Fuse every item, printing one JSON line each; the results and the store errors."""
    from apex.cli.fuse_cmd import result_json
    from apex.fusion import check_workflow, fuse
    from apex.models.client import ModelClient

    gate = asyncio.Semaphore(concurrency)
    results: list[FusionResult] = []
    unrecorded: list[str] = []
    async with ModelClient(workflow.client_settings) as client:
        check_workflow(workflow, client)

        async def one(item: dict[str, Any], bar: TerminalBar) -> None:
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
            results.append(result)
            line = {"id": item["id"], "expected": expected}
            line["correct"] = correct(result, expected, workflow)
            line |= result_json(result)
            if not_recorded is not None:
                unrecorded.append(not_recorded)
                line |= {"recorded": False, "store_error": not_recorded}
            print_line(json.dumps(line))
            bar.advance()

        with TerminalBar(len(items), "fusing") as bar:
            await asyncio.gather(*(one(item, bar) for item in items))
    return results, unrecorded
