"""Replay recorded panel answers through the evidence policy and measure it.

The input is a CSV ``qid,category,n_options,gold,<one column per model>`` whose model cells are
answer letters (``A``..) or ``null`` (no answer: the model abstains), e.g. the MMLU-Pro bench in
``/work/shared/bench/mmlu-pro``. Questions are visited in a seeded random order; each is
fused by weighted vote from the evidence gathered so far, then its outcome becomes evidence
through :func:`~apex.evidence.events.cycle_events`, the function live fusion uses: with ground
truth, every answer's verdict against the gold; without, only each answer's agreement with the
other panel members. A recorded answer plays a panel call that succeeded; ``null`` one whose
answer had no extractable choice. Baselines use hindsight or no learning: the best single model
(the one best over the whole file), plain majority and the oracle (some model was right).
"""

from __future__ import annotations

import csv
import os
import random
import time
from pathlib import Path

from pydantic import BaseModel, Field

from apex.errors import ReplayDataError
from apex.evidence.events import CallOutcome, CycleRecord, PanelVote, Truth, cycle_events
from apex.evidence.policy import DEFAULT_POLICY, WeightPolicy, panel_weights
from apex.store.aggregate import GLOBAL_CATEGORY, AggregateStore
from apex.store.memory import InMemoryAggregates
from apex.vote import plurality, top_answers, vote_scores
from apex.workflow import ExtractConfig

HEADER = ("qid", "category", "n_options", "gold")
"""The fixed leading columns of an answers CSV; model columns follow."""
NULL = "null"
"""Cell value of a model that gave no answer."""
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""Answer letters, in option order (a question with K options uses the first K)."""
CHOICE = ExtractConfig(kind="choice")
"""Recorded answers are option letters."""


class AnswerTable(BaseModel):
    """A validated answers CSV, column-oriented."""

    source: str
    """Path the table was read from."""
    models: list[str]
    """Model columns, in file order."""
    qids: list[str]
    """Question ids, in file order."""
    categories: list[str]
    """Category of each question."""
    n_options: list[int]
    """Number of options of each question."""
    gold: list[str]
    """Gold answer letter of each question."""
    answers: list[list[str | None]]
    """Per question, each model's letter (None: no answer), in ``models`` order."""


def load_answers(path: str | os.PathLike[str]) -> AnswerTable:
    """Read and validate an answers CSV; raises :class:`ReplayDataError` on any problem."""
    where = str(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ReplayDataError(f"{where}: cannot read answers CSV: {exc}") from exc
    if not rows:
        raise ReplayDataError(f"{where}: empty file, expected header {','.join(HEADER)},<models>")
    header = [h.strip() for h in rows[0]]
    if tuple(header[:4]) != HEADER:
        raise ReplayDataError(
            f"{where}: header must start with {','.join(HEADER)}, got {','.join(header[:4])}"
        )
    models = header[4:]
    if not models or any(not m for m in models):
        raise ReplayDataError(f"{where}: header has an empty or no model column")
    if len(set(models)) != len(models):
        raise ReplayDataError(f"{where}: duplicate model column in header")
    if len(rows) < 2:
        raise ReplayDataError(f"{where}: no question rows after the header")
    table = AnswerTable.model_construct(
        source=where, models=models, qids=[], categories=[], n_options=[], gold=[], answers=[]
    )
    seen: set[str] = set()
    for line, row in enumerate(rows[1:], start=2):
        _parse_row(table, row, len(header), seen, f"{where}: line {line}")
    return table


def _parse_row(table: AnswerTable, row: list[str], width: int, seen: set[str], at: str) -> None:
    if len(row) != width:
        raise ReplayDataError(f"{at}: expected {width} fields, got {len(row)}")
    qid, category, n_text, gold = (c.strip() for c in row[:4])
    if not qid or qid in seen:
        raise ReplayDataError(f"{at}: empty or duplicate qid {qid!r}")
    if not category:
        raise ReplayDataError(f"{at}: empty category")
    try:
        k = int(n_text)
    except ValueError:
        raise ReplayDataError(f"{at}: n_options {n_text!r} is not an integer") from None
    if not 2 <= k <= len(LETTERS):
        raise ReplayDataError(f"{at}: n_options {k} outside 2..{len(LETTERS)}")
    valid = LETTERS[:k]
    if gold not in valid:
        raise ReplayDataError(f"{at}: gold {gold!r} is not one of the first {k} letters")
    cells: list[str | None] = []
    for model, cell in zip(table.models, row[4:], strict=True):
        cell = cell.strip()
        if cell == NULL:
            cells.append(None)
        elif len(cell) == 1 and cell in valid:
            cells.append(cell)
        else:
            raise ReplayDataError(f"{at}: {model} answer {cell!r} is not null or one of {valid}")
    seen.add(qid)
    table.qids.append(qid)
    table.categories.append(category)
    table.n_options.append(k)
    table.gold.append(gold)
    table.answers.append(cells)


class ModelStats(BaseModel):
    """One panel model's record over the whole file."""

    model: str
    """The model."""
    answered: int
    """Questions it answered (non-null)."""
    accuracy: float
    """Percent right over all questions (a null counts as wrong)."""
    accuracy_answered: float
    """Percent right over the questions it answered."""
    final_weight: float
    """Its category-free weight after the replay."""


class CurvePoint(BaseModel):
    """Running accuracies (percent) after ``seen`` questions."""

    seen: int
    """Questions processed so far."""
    policy: float
    """Policy accuracy so far."""
    majority: float
    """Plain majority accuracy so far (ties at expected value)."""
    best_single: float
    """Accuracy so far of the model best over the whole file."""
    oracle: float
    """Share so far of questions some panel model got right."""


class ReplayReport(BaseModel):
    """What a replay measured. Accuracies are percentages of all questions."""

    source: str
    """The answers CSV."""
    panel: list[str]
    """Panel models, in the order given."""
    seed: int
    """Seed of the question order."""
    ground_truth: bool
    """Whether gold verdicts were fed back as evidence (on some questions at least)."""
    gt_fraction: float = 1.0
    """The share of questions whose gold verdicts were fed back (a seeded draw per question)."""
    n_questions: int
    """Questions replayed (the first ``n_questions`` of the order)."""
    category_counts: dict[str, int]
    """Questions per category."""
    best_single_model: str
    """The panel model best over the replayed questions (hindsight)."""
    best_single: float
    """Its accuracy."""
    majority: float
    """Plain majority vote; ties count at expected value (1/k if gold is among k tied)."""
    majority_ties: int
    """Questions where plain majority was tied."""
    oracle: float
    """Questions some panel model got right."""
    policy: float
    """The online policy, exact ties broken by a hash of the seed and question id."""
    policy_ties_ev: float
    """The policy with its exact ties counted at expected value, as for majority."""
    policy_ties: int
    """Questions where the policy's weighted vote was exactly tied."""
    policy_by_category: dict[str, float]
    """Policy accuracy within each category."""
    models: list[ModelStats]
    """Each panel model's record."""
    curve: list[CurvePoint]
    """Running accuracies, one point per ``curve_every`` questions and one at the end."""
    elapsed_s: float = Field(ge=0)
    """Wall time of the replay, loading excluded."""


def run_replay(
    path: str | os.PathLike[str] | AnswerTable,
    panel: list[str] | None = None,
    seed: int = 0,
    ground_truth: bool = True,
    store: AggregateStore | None = None,
    policy: WeightPolicy = DEFAULT_POLICY,
    curve_every: int = 50,
    gt_fraction: float | None = None,
    first: int | None = None,
) -> ReplayReport:
    """Replay the questions of ``path`` (or a loaded table) online through ``policy``.

    ``panel`` picks model columns (all by default). Questions are visited in an order seeded
    by ``seed``, only the ``first`` of them when given. Gold verdicts are fed back on every
    question (``ground_truth``), on none, or on a seeded ``gt_fraction`` of them. Evidence goes
    to ``store`` (a fresh in-memory store by default), one batch per question.
    """
    table = path if isinstance(path, AnswerTable) else load_answers(path)
    models = list(table.models) if panel is None else list(panel)
    _check_panel(table, models)
    fraction = (1.0 if ground_truth else 0.0) if gt_fraction is None else gt_fraction
    if not 0.0 <= fraction <= 1.0:
        raise ReplayDataError(f"gt_fraction {fraction} is not between 0 and 1")
    store = InMemoryAggregates() if store is None else store
    cols = [table.models.index(m) for m in models]
    order = list(range(len(table.qids)))
    random.Random(seed).shuffle(order)
    order = order[:first] if first is not None else order
    n = len(order)
    if n == 0:
        raise ReplayDataError(f"{table.source}: no questions to replay (first = {first})")
    right = [sum(table.answers[q][c] == table.gold[q] for q in order) for c in cols]
    best_i = max(range(len(models)), key=lambda i: right[i])
    labelled = random.Random(f"{seed}:ground-truth")

    start = time.perf_counter()
    tot = {"policy": 0.0, "policy_ev": 0.0, "majority": 0.0, "best": 0.0, "oracle": 0.0}
    ties = {"policy": 0, "majority": 0}
    cat_right: dict[str, float] = {}
    curve: list[CurvePoint] = []
    for seen, q in enumerate(order, start=1):
        gold, cat, k = table.gold[q], table.categories[q], table.n_options[q]
        row = table.answers[q]
        answers = {m: row[c] for m, c in zip(models, cols, strict=True)}
        tot["best"] += answers[models[best_i]] == gold
        tot["oracle"] += gold in answers.values()
        plain = top_answers(vote_scores(answers, {}))
        ties["majority"] += len(plain) > 1
        tot["majority"] += (gold in plain) / len(plain) if plain else 0.0
        weights = panel_weights(store, models, cat, k, policy)
        tied = top_answers(vote_scores(answers, weights))
        if tied:
            fused = plurality(answers, weights, tie_key=f"{seed}:{table.qids[q]}")
            ties["policy"] += len(tied) > 1
            tot["policy"] += fused == gold
            tot["policy_ev"] += (gold in tied) / len(tied)
            cat_right[cat] = cat_right.get(cat, 0.0) + (fused == gold)
        truth = Truth(expected=gold) if labelled.random() < fraction else None
        store.apply(cycle_events(recorded_cycle(answers, weights, cat, k), truth))
        if seen % curve_every == 0 or seen == n:
            curve.append(
                CurvePoint(
                    seen=seen,
                    policy=100 * tot["policy"] / seen,
                    majority=100 * tot["majority"] / seen,
                    best_single=100 * tot["best"] / seen,
                    oracle=100 * tot["oracle"] / seen,
                )
            )
    elapsed = time.perf_counter() - start

    counts: dict[str, int] = {}
    for q in order:
        counts[table.categories[q]] = counts.get(table.categories[q], 0) + 1
    final = panel_weights(store, models, GLOBAL_CATEGORY, None, policy)
    stats = []
    for i, (m, c) in enumerate(zip(models, cols, strict=True)):
        answered = sum(table.answers[q][c] is not None for q in order)
        stats.append(
            ModelStats(
                model=m,
                answered=answered,
                accuracy=100 * right[i] / n,
                accuracy_answered=100 * right[i] / answered if answered else 0.0,
                final_weight=final[m],
            )
        )
    return ReplayReport(
        source=table.source,
        panel=models,
        seed=seed,
        ground_truth=fraction > 0.0,
        gt_fraction=fraction,
        n_questions=n,
        category_counts=counts,
        best_single_model=models[best_i],
        best_single=100 * right[best_i] / n,
        majority=100 * tot["majority"] / n,
        majority_ties=ties["majority"],
        oracle=100 * tot["oracle"] / n,
        policy=100 * tot["policy"] / n,
        policy_ties_ev=100 * tot["policy_ev"] / n,
        policy_ties=ties["policy"],
        policy_by_category={c: 100 * cat_right.get(c, 0.0) / counts[c] for c in sorted(counts)},
        models=stats,
        curve=curve,
        elapsed_s=elapsed,
    )


def recorded_cycle(
    answers: dict[str, str | None], weights: dict[str, float], category: str, n_options: int
) -> CycleRecord:
    """The evidence record of one recorded question: every model a successful panel call,
    labelled by its name, whose answer is the recorded letter (None: no extractable choice)."""
    return CycleRecord(
        category=category,
        n_options=n_options,
        extract=CHOICE,
        calls=[CallOutcome(role="panel", model=m, ok=True, label=m) for m in answers],
        votes=[
            PanelVote(label=m, model=m, answer=a, weight=weights.get(m, 1.0))
            for m, a in answers.items()
        ],
    )


def _check_panel(table: AnswerTable, panel: list[str]) -> None:
    if not panel:
        raise ReplayDataError(f"{table.source}: the panel is empty")
    unknown = [m for m in panel if m not in table.models]
    if unknown:
        raise ReplayDataError(
            f"{table.source}: panel model(s) {', '.join(unknown)} not in the file's columns"
        )
    if len(set(panel)) != len(panel):
        raise ReplayDataError(f"{table.source}: the panel names a model twice")


BENCH_PANELS: dict[str, tuple[str, ...]] = {
    "top5": (
        "gemini-1.5-pro-002",
        "gemini-1.5-flash-002",
        "Meta-Llama-3_1-70B-Instruct",
        "DeepSeek-Coder-V2",
        "Meta-Llama-3-70B",
    ),
    "mid9": (
        "Meta-Llama-3-70B",
        "jamba-1.5-large",
        "Qwen1.5-72B-Chat",
        "Qwen1.5-110B",
        "Phi-3-mini-4k-instruct",
        "Yi-34B",
        "mathstral-7B",
        "c4ai-command-r-v01",
        "Mixtral-8x7B-Instruct-v0.1",
    ),
}
"""The MMLU-Pro bench's named panels (its README's top5 and mid9), as the README reports them."""
BENCH_PANELS["mid8"] = BENCH_PANELS["mid9"][:-1]  # mid9 without Mixtral-8x7B-Instruct-v0.1


def default_data_path() -> Path:
    """Where the shared MMLU-Pro bench answers live (may not exist)."""
    return Path("/work/shared/bench/mmlu-pro/answers.csv")
