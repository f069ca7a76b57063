"""What ``apex fuse`` shows on screen: live progress per panel member, then the result.

The result screen says everything a user needs to trust or doubt the answer: the path that
produced it (and, for ``select``, the label picked), every failed call with its reason, every
member left out and why, answers cut off at the token limit, and the judge's analysis without
empty or degenerate sections (a heading with nothing under it, or points that are only labels or
numbers, says nothing).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from apex.cli.common import console

if TYPE_CHECKING:
    from apex.fusion import FusionEvent
    from apex.graph.types import FusionResult
    from apex.workflow import Workflow

_FILLER = re.compile(
    r"\b(?:[A-Za-z]|\d+(?:\.\d+)?|none|n/?a|null|nothing|no|not|any|and|or|all|candidates?"
    r"|labels?|noticed|found|identified|observed|notable|apparent|detected|applicable"
    r"|consensus|contradictions?|partial|coverage|unique|insights?|blind|spots?)\b",
    re.IGNORECASE,
)
TRUNCATED = "cut off at max_tokens"
"""How a truncated answer (``finish_reason: length``) is marked."""


def meaningful(point: str) -> bool:
    """Whether an analysis point says something: not empty, not only labels, numbers or 'none'."""
    return bool(re.sub(r"[\W_]+", "", _FILLER.sub("", point)))


class LiveProgress:
    """A live table of panel members while the cycle runs, and the judge's answer as it is
    written (judge synthesis, where the judge's provider streams)."""

    def __init__(self, workflow: Workflow) -> None:
        self.rows: dict[int, tuple[str, str, str]] = {
            i: (m.model, "running", "") for i, m in enumerate(workflow.panel)
        }
        self.stage = "panel answering"
        self.answer = ""
        """The judge's answer so far."""

    def view(self) -> RenderableType:
        """The table as it stands, under it the answer so far."""
        table = Table("#", "model", "status", "latency", title=self.stage, title_justify="left")
        for i, (model, status, latency) in sorted(self.rows.items()):
            table.add_row(str(i + 1), model, status, latency)
        if not self.answer:
            return table
        return Group(table, Panel(Text(self.answer), title="the judge is writing"))

    def write(self, answer: str) -> None:
        """The judge's answer is now ``answer`` (see ``fuse(on_answer=...)``)."""
        self.answer = answer
        self.stage = "judge writing"

    def update(self, event: FusionEvent) -> None:
        """Fold one event of the cycle into the table."""
        if event.kind == "candidate":
            cand = event.data
            status = "ok" if cand.ok else f"failed: {cand.failure.kind if cand.failure else '?'}"
            self.rows[cand.member] = (cand.model, status, f"{cand.call.latency_s:.2f}s")
            if all(r[1] != "running" for r in self.rows.values()):
                self.stage = "critics and judge"
        elif event.kind == "critique":
            self.stage = "judge"
        elif event.kind == "judge":
            self.stage = "synthesizing"


def truncated_members(result: FusionResult) -> set[int]:
    """Panel members whose answer stopped at the token limit (``finish_reason: length``)."""
    return {
        c.member
        for c in result.calls
        if c.role == "panel" and c.member is not None and c.finish_reason == "length"
    }


def picked_label(result: FusionResult) -> str | None:
    """The label ``select`` picked: the candidate whose text is the answer."""
    if result.synthesis_path != "select":
        return None
    return next((c.label for c in result.candidates if c.ok and c.text == result.answer), None)


def _title(result: FusionResult, cut: set[int]) -> str:
    title = f"answer · {result.synthesis_path}"
    label = picked_label(result)
    if label is not None:
        title += f" · picked {label}"
        member = next(c.member for c in result.candidates if c.label == label)
        if member in cut:
            title += f" · {TRUNCATED}"
    return title


def _analysis(result: FusionResult) -> None:
    shown = False
    for name in type(result.analysis).model_fields:
        points = [p for p in getattr(result.analysis, name) or [] if meaningful(p)]
        if not points:
            continue
        shown = True
        console.print(f"[bold]{name.replace('_', ' ')}[/bold]")
        for point in points:
            console.print(f"  • {point}", markup=False, highlight=False)
    if not shown:
        why = "no judge verdict" if not result.judge_model else "nothing said beyond the answer"
        console.print(f"[dim]analysis: {why}[/dim]")


def _queued(result: FusionResult) -> dict[int, float]:
    """Panel members that waited for a provider slot, and how long (seconds)."""
    return {
        c.member: c.queue_s
        for c in result.calls
        if c.role == "panel" and c.member is not None and c.queue_s >= 0.05
    }


def _candidates(result: FusionResult, cut: set[int]) -> None:
    queued = _queued(result)
    table = Table("label", "model", "status", "score", "latency", "tokens", "cost", title="panel")
    for c in result.candidates:
        if c.ok:
            status = "ok, cut off" if c.member in cut else "ok"
        else:
            status = (c.error or "failed").split(":", 1)[0]
        table.add_row(
            c.label or "-",
            c.model,
            status,
            "-" if c.score is None else f"{c.score:.2f}",
            f"{c.latency_s - queued.get(c.member, 0.0):.2f}s" if c.ok or c.latency_s else "-",
            "?" if c.tokens is None else str(c.tokens),
            "?" if c.cost_usd is None else f"${c.cost_usd:.6f}",
        )
    console.print(table)
    if queued:
        waits = ", ".join(f"member {m + 1} {s:.1f}s" for m, s in sorted(queued.items()))
        console.print(
            f"[dim]latency is the call's own time; waited for a provider slot first: {waits} "
            "(local models run one call at a time)[/dim]"
        )
    scores = [c.score for c in result.candidates if c.score is not None]
    if len(scores) > 1 and len(set(scores)) == 1:
        console.print(f"[dim]the judge gave every candidate the same score ({scores[0]:.2f})[/dim]")


def _problems(result: FusionResult) -> None:
    """Every failed call and every member left out, each with its reason, one line each."""
    for c in result.candidates:
        if not c.ok and (c.error or "").startswith("skipped:"):
            why = (c.error or "").removeprefix("skipped:").strip()
            console.print(
                f"skipped: member {c.member + 1} {c.model}: {why}", markup=False, highlight=False
            )
    for call in result.calls:
        if not call.ok:
            where = f"member {call.member + 1} " if call.member is not None else ""
            console.print(
                f"failed: {call.role} {where}{call.model}: {call.failure_kind}: {call.error}",
                markup=False,
                highlight=False,
                style="red",
            )


def show_result(result: FusionResult) -> None:
    """The whole result screen."""
    cut = truncated_members(result)
    console.print(
        Panel(
            Text(result.answer or "(no answer)"),  # a model's text, never console markup
            title=_title(result, cut),
            border_style="green" if result.ok else "red",
        )
    )
    _analysis(result)
    _candidates(result, cut)
    judge_calls = [c for c in result.calls if c.role != "panel"]
    if judge_calls:
        table = Table("role", "model", "ok", "latency", "tokens", "cost", title="critics and judge")
        for call in judge_calls:
            tokens = (
                "?"
                if call.prompt_tokens is None or call.completion_tokens is None
                else str(call.prompt_tokens + call.completion_tokens)
            )
            table.add_row(
                call.role,
                call.model,
                "yes" if call.ok else (call.failure_kind or "no"),
                f"{call.latency_s:.2f}s",
                tokens,
                "?" if call.cost_usd is None else f"${call.cost_usd:.6f}",
            )
        console.print(table)
    _problems(result)
    cost = "unknown" if result.cost_usd is None else f"${result.cost_usd:.6f}"
    console.print(f"[dim]run {result.run_id} · {result.latency_s:.2f}s · cost {cost}[/dim]")
