"""Learning-without-labels figures: the README panels and stress panels, seeds 0-4.

Builds, from any answers CSV of the bench's shape (``qid,category,n_options,gold,<models>``):

- ``copies``: three exact copies of one weak model (the model at the bottom quartile of
  accuracy) plus the four most accurate models;
- ``bloc``: the most accurate model plus four models that always give the same wrong letter;
- ``turns``: the README's top5 (else the five most accurate models) whose best model answers
  at random from halfway through the replay order on;
- ``first200``: the first 200 questions of each README panel (``all``, ``top5``, ``mid9``).

Each panel is replayed through ``apex.evidence.run_replay`` (what ``apex replay`` runs) with
ground truth on every question, on a seeded tenth of them, and on none, and printed as policy
accuracy against plain majority and the best single model (ties at expected value).

    .venv/bin/python benchmarks/stress_panels.py                       # everything, seeds 0-4
    .venv/bin/python benchmarks/stress_panels.py --panels copies bloc --seeds 0 1
    .venv/bin/python benchmarks/stress_panels.py --csv-dir /tmp/stress  # also write the CSVs
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

from apex.evidence import ReplayReport, run_replay
from apex.evidence.replay import (
    BENCH_PANELS,
    LETTERS,
    AnswerTable,
    default_data_path,
    load_answers,
)

TOP5, MID9 = list(BENCH_PANELS["top5"]), list(BENCH_PANELS["mid9"])

REGIMES = {"gt": 1.0, "gt10%": 0.1, "no-gt": 0.0}


def ranked(table: AnswerTable) -> list[str]:
    """Models, most accurate first (a null counts as wrong)."""
    n = len(table.qids)
    acc = {
        m: sum(table.answers[q][c] == table.gold[q] for q in range(n))
        for c, m in enumerate(table.models)
    }
    return sorted(table.models, key=lambda m: -acc[m])


def derived(table: AnswerTable, columns: dict[str, list[str | None]], name: str) -> AnswerTable:
    """A table with the same questions and new model columns."""
    models = list(columns)
    answers = [[columns[m][q] for m in models] for q in range(len(table.qids))]
    return table.model_copy(update={"source": name, "models": models, "answers": answers})


def column(table: AnswerTable, model: str) -> list[str | None]:
    """One model's answers."""
    c = table.models.index(model)
    return [row[c] for row in table.answers]


def wrong_letter(table: AnswerTable, q: int) -> str:
    """A fixed wrong option of question ``q``."""
    options = [x for x in LETTERS[: table.n_options[q]] if x != table.gold[q]]
    return random.Random(f"bloc:{table.qids[q]}").choice(options)


def stress_table(table: AnswerTable, name: str, seed: int) -> AnswerTable:
    """The stress panel ``name`` built from ``table`` (``turns`` depends on the seed's order)."""
    order = ranked(table)
    n = len(table.qids)
    if name == "copies":
        weak = order[3 * len(order) // 4]
        cols = {m: column(table, m) for m in order[:4]}
        cols |= {f"{weak}#copy{i}": column(table, weak) for i in range(3)}
        return derived(table, cols, f"copies of {weak} + top 4")
    if name == "bloc":
        cols = {order[0]: column(table, order[0])}
        cols |= {f"bloc{i}": [wrong_letter(table, q) for q in range(n)] for i in range(4)}
        return derived(table, cols, f"{order[0]} + a wrong bloc of 4")
    if name == "turns":
        panel = TOP5 if all(m in table.models for m in TOP5) else order[:5]
        positions = list(range(n))
        random.Random(seed).shuffle(positions)  # the replay's order for this seed
        late = set(positions[n // 2 :])
        cols = {m: column(table, m) for m in panel}
        best = min(panel, key=order.index)
        noise = random.Random(f"turns:{seed}")
        cols[best] = [
            noise.choice(LETTERS[: table.n_options[q]]) if q in late else a
            for q, a in enumerate(cols[best])
        ]
        return derived(table, cols, f"top5, {best} random from halfway")
    raise ValueError(f"unknown stress panel {name!r}")


def readme_panels(table: AnswerTable) -> dict[str, list[str]]:
    """The README's panels present in the file (the held-out file may have other models)."""
    panels = {"all": list(table.models)}
    for name, panel in (("top5", TOP5), ("mid9", MID9)):
        panels[name] = panel if all(m in table.models for m in panel) else ranked(table)[:5]
    return panels


def run(
    table: AnswerTable, panel: list[str], seed: int, fraction: float, first: int | None
) -> ReplayReport:
    """One replay."""
    return run_replay(table, panel, seed=seed, gt_fraction=fraction, first=first)


def main() -> None:
    """Replay every panel under every regime and print one row each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("answers", nargs="?", default=str(default_data_path()))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--panels",
        nargs="+",
        default=["all", "top5", "mid9", "copies", "bloc", "turns", "first200"],
    )
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--csv-dir", type=Path, help="Also write each stress panel's CSV here.")
    parser.add_argument("--json", action="store_true", help="Print JSON lines instead.")
    args = parser.parse_args()
    table = load_answers(args.answers)
    readme = readme_panels(table)
    jobs: list[tuple[str, str]] = []
    for name in args.panels:
        if name == "first200":
            jobs += [(f"first200:{p}", p) for p in readme]
        else:
            jobs.append((name, name))
    if not args.json:
        print(
            "| panel | regime | policy (seeds) | majority | best single | min vs majority "
            "| min vs max(best, majority) |"
        )
        print("|---|---|---|---|---|---|---|")
    for label, name in jobs:
        for regime in args.regimes:
            reports = []
            for seed in args.seeds:
                first = 200 if label.startswith("first200") else None
                if name in readme:
                    source, panel = table, readme[name]
                else:
                    source = stress_table(table, name, seed)
                    panel = list(source.models)
                    if args.csv_dir is not None:
                        write_csv(source, args.csv_dir / f"{name}-seed{seed}.csv")
                reports.append(run(source, panel, seed, REGIMES[regime], first))
            emit(label, regime, reports, args.json)


def emit(label: str, regime: str, reports: list[ReplayReport], as_json: bool) -> None:
    """One row: the policy per seed, and its worst margins."""
    policy = [r.policy_ties_ev for r in reports]
    vs_majority = min(r.policy_ties_ev - r.majority for r in reports)
    vs_max = min(r.policy_ties_ev - max(r.majority, r.best_single) for r in reports)
    if as_json:
        print(json.dumps({"panel": label, "regime": regime, "policy": policy,
                          "majority": [r.majority for r in reports],
                          "best_single": [r.best_single for r in reports],
                          "seeds": [r.seed for r in reports]}))  # fmt: skip
        return
    seeds = " ".join(f"{p:.2f}" for p in policy)
    majority = statistics.mean(r.majority for r in reports)
    best = statistics.mean(r.best_single for r in reports)
    print(
        f"| {label} | {regime} | {seeds} | {majority:.2f} | {best:.2f} | "
        f"{vs_majority:+.2f} | {vs_max:+.2f} |",
        flush=True,
    )


def write_csv(table: AnswerTable, path: Path) -> None:
    """The table in the bench's CSV shape (for reference.py or apex replay)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["qid,category,n_options,gold," + ",".join(table.models)]
    for q, qid in enumerate(table.qids):
        cells = ",".join(a or "null" for a in table.answers[q])
        lines.append(f"{qid},{table.categories[q]},{table.n_options[q]},{table.gold[q]},{cells}")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
