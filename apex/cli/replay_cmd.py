"""``apex replay ANSWERS.csv``: replay a recorded panel through the evidence policy.

Questions are fused one by one in a seeded random order from the evidence gathered so far, and
their outcome becomes evidence (see :mod:`apex.evidence.replay`). The policy's accuracy is
reported next to the best single model (in hindsight), plain majority and the oracle.

Evidence goes to an in-memory aggregate store by default; ``--db URL`` sends it through a real
:class:`~apex.store.EvidenceStore` instead, behind a write-behind buffer
(:class:`~apex.store.buffered.WriteBehind`): aggregates are read from the database once, folded
by the store's own rule, and written with their events every 500 questions and at the end.
"""

from __future__ import annotations

import difflib
import gc
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from apex.cli.common import bad_input, console, guarded, print_json
from apex.cli.progress import TerminalBar
from apex.errors import ReplayDataError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from apex.evidence import ReplayReport
    from apex.evidence.replay import AnswerTable
    from apex.store import AggKey, EvidenceEvent, EvidenceStore, ModelAggregate
    from apex.store.aggregate import AggregateStore

CSV_FORMAT = (
    "an answers CSV has columns qid,category,n_options,gold, then one per model (A-J or null)"
)
"""The format reminder appended to errors about the CSV."""
MEMORY_STORE = "memory"
"""What ``--json`` reports as ``store`` for a replay without ``--db``."""


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value is not None else None


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector: a replay allocates millions of short-lived objects and
    almost no reference cycles (a run over all 29 models frees about 3,000 objects that way),
    so its passes over the growing heap cost 6% of the run for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Counted:
    """An aggregate store that advances a progress bar once per question (one apply each)."""

    def __init__(self, store: AggregateStore, bar: TerminalBar) -> None:
        self.store, self.bar = store, bar

    def get_keys(self, keys: Iterable[AggKey]) -> Mapping[AggKey, ModelAggregate]:
        """The wrapped store's aggregates."""
        return self.store.get_keys(keys)

    def apply(self, events: Iterable[EvidenceEvent]) -> None:
        """Fold one question's events, then count it."""
        self.store.apply(events)
        self.bar.advance()


def _load(path: Path, panel: list[str] | None) -> AnswerTable:
    from apex.evidence import load_answers

    if not path.is_file():
        bad_input(
            f"{path}: no such file; give the path of a recorded panel's answers CSV ({CSV_FORMAT})"
        )
    try:
        table = load_answers(path)
    except ReplayDataError as exc:
        bad_input(f"{exc}; {CSV_FORMAT}")
    for model in panel or []:
        if model not in table.models:
            near = difflib.get_close_matches(model, table.models, n=1)
            hint = f"did you mean {near[0]}?" if near else "check its spelling"
            bad_input(
                f"{path}: --panel model {model!r} is not a column of the file; {hint} "
                f"(columns: {', '.join(table.models)})"
            )
    if panel is not None and (not panel or len(set(panel)) != len(panel)):
        bad_input("--panel: give distinct model columns separated by commas, e.g. --panel m1,m2,m3")
    return table


def _open_store(db: str, panel: Sequence[str]) -> EvidenceStore:
    from apex.cli.stores import open_store
    from apex.evidence import GLOBAL_CATEGORY
    from apex.store import record_keys

    store = open_store(db, write=True)
    aggs = store.get_keys(record_keys(panel, GLOBAL_CATEGORY))
    held = [model for (model, _, _), agg in aggs.items() if agg.events]
    if held:
        name = store.masked_url
        store.close()
        bad_input(
            f"{name} already holds evidence for {', '.join(held[:3])}"
            f"{' and others' if len(held) > 3 else ''}: a replay starts from no evidence; "
            "give --db a new database, e.g. --db /tmp/replay.db"
        )
    return store


def report_json(report: ReplayReport, store: str) -> dict[str, Any]:
    """The ``--json`` shape: the report's fields and ``store`` (``memory`` or the masked URL)."""
    return report.model_dump(mode="json") | {"store": store}


def _show(report: ReplayReport, store: str) -> None:
    mode = (
        "without ground truth"
        if not report.ground_truth
        else "with ground truth"
        if report.gt_fraction >= 1.0
        else f"with ground truth on {100 * report.gt_fraction:g}% of questions"
    )
    table = Table(
        "method",
        "accuracy",
        "note",
        title=f"replay of {len(report.panel)} models on {report.n_questions} questions, "
        f"seed {report.seed}, {mode}",
        title_justify="left",
    )
    table.add_row(
        "best single (hindsight)", f"{report.best_single:.2f}%", escape(report.best_single_model)
    )
    table.add_row(
        "plain majority",
        f"{report.majority:.2f}%",
        f"{report.majority_ties} ties at expected value",
    )
    table.add_row("oracle", f"{report.oracle:.2f}%", "some panel model was right")
    table.add_row(
        f"policy, {mode}",
        f"{report.policy_ties_ev:.2f}%",
        f"{report.policy_ties} exact ties at expected value, as for plain majority",
        style="bold",
    )
    table.add_row(
        "policy, this run's tie-breaks",
        f"{report.policy:.2f}%",
        "exact ties broken by a hash of seed and question",
    )
    console.print(table)
    console.print(
        f"[dim]{escape(report.source)} · {report.elapsed_s:.2f}s "
        f"({1000 * report.elapsed_s / report.n_questions:.2f} ms per question) "
        f"through {escape(store)}[/dim]",
        highlight=False,
    )


@guarded
def replay(
    answers: Annotated[
        Path, typer.Argument(help="Answers CSV: qid,category,n_options,gold,<model columns>.")
    ],
    panel: Annotated[
        str | None, typer.Option(help="Comma-separated model columns (default: all of them).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the question order.")] = 0,
    ground_truth: Annotated[
        bool,
        typer.Option(
            "--ground-truth/--no-ground-truth",
            help="Feed gold verdicts back as evidence, or only peer agreement.",
        ),
    ] = True,
    gt_fraction: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Feed gold back on this seeded share of questions only."
        ),
    ] = None,
    first: Annotated[
        int | None, typer.Option(min=1, help="Replay only the first N questions of the order.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    plot: Annotated[
        Path | None, typer.Option(help="Write a PNG of running accuracy vs questions seen.")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            help="Run through an evidence store at this URL (a new one) instead of memory."
        ),
    ] = None,
) -> None:
    """Replay a recorded panel's answers through the evidence policy and measure it."""
    from apex.evidence import run_replay
    from apex.store.buffered import WriteBehind
    from apex.store.memory import InMemoryAggregates

    models = _split(panel)
    table = _load(answers, models)
    chosen = models if models is not None else table.models
    store: WriteBehind | None = None
    where = MEMORY_STORE
    sql: EvidenceStore | None = None
    if db is not None:
        sql = _open_store(db, chosen)
        store, where = WriteBehind(sql), sql.masked_url
    questions = min(first, len(table.qids)) if first else len(table.qids)
    try:
        with _without_cycle_collection(), TerminalBar(questions, "replaying") as bar:
            report = run_replay(
                table,
                chosen,
                seed=seed,
                ground_truth=ground_truth,
                store=_Counted(store if store is not None else InMemoryAggregates(), bar),
                gt_fraction=gt_fraction,
                first=first,
            )
        if store is not None:  # the last write is part of the replay's time
            started = time.perf_counter()
            store.flush()
            elapsed = report.elapsed_s + time.perf_counter() - started
            report = report.model_copy(update={"elapsed_s": elapsed})
    finally:
        if sql is not None:
            sql.close()
    if plot is not None:
        from apex.evidence.plot import plot_replay  # matplotlib only when asked for

        try:
            plot_replay(report, plot)
        except (OSError, ValueError) as exc:
            bad_input(f"{plot}: cannot write the plot: {exc}; give a writable path ending in .png")
    if json_out:
        print_json(report_json(report, where))
    else:
        _show(report, where)
        if plot is not None:
            console.print(f"[dim]plot written to {escape(str(plot))}[/dim]", highlight=False)
