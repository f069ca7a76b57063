"""The live path on recorded answers: ``apex fuse --batch`` over an HTTP panel that replays them.

Each panel model is served by :class:`apex.testing.TestServer` and answers a question with the
letter it gave in the MMLU-Pro bench (``The answer is (X).``; a ``null`` answers with text that
holds no choice letter). The real CLI runs the batch with vote synthesis and a choice
``[extract]``, a fresh evidence store and ``APEX_HOME``; items carry ``category``, ``n_options``
and, on every K-th item of the shuffled order, ``expected``. The table compares APEX's live
accuracy with the best single model (in hindsight) and plain majority (nulls abstain, ties at
their expected value) on the same questions, in percent of all questions.

    .venv/bin/python benchmarks/live_batch.py --limit 300                # quick check
    .venv/bin/python benchmarks/live_batch.py --label-every 1 10         # both panels, all items
    .venv/bin/python benchmarks/live_batch.py --panel mid8 --seed 3 --concurrency 8 --json
    .venv/bin/python benchmarks/live_batch.py --models gemini-1.5-pro-002,Yi-34B,gemma-7b
    .venv/bin/python benchmarks/live_batch.py --bench /path/to/other-half
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from apex.evidence.replay import BENCH_PANELS
from apex.testing import TestServer, workflow_toml
from apex.vote import extract_choice

DEFAULT_BENCH = Path("/work/shared/bench/mmlu-pro")
PANELS: dict[str, list[str]] = {n: list(BENCH_PANELS[n]) for n in ("top5", "mid8")}
PROVIDER = "bench"
NULL_TEXT = "No answer."  # no standalone capital A-J: "I am not sure." would extract "I"
_QID = re.compile(r"^Question (\S+):")

Row = dict[str, str]


def letter_text(letter: str) -> str:
    """What a model that chose ``letter`` says."""
    return f"The answer is ({letter})."


def sanitize(name: str) -> str:
    """A model name safe in a ``provider:model`` spec and a URL body."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name)


def load(bench: Path) -> tuple[list[Row], dict[str, dict[str, Any]]]:
    """The answer rows and the questions by qid."""
    with (bench / "answers.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    with (bench / "questions.jsonl").open(encoding="utf-8") as f:
        questions = {str(q["qid"]): q for q in map(json.loads, f) if q}
    return rows, questions


def prompt_of(question: dict[str, Any]) -> str:
    """The batch prompt: the qid on the first line, then the question and lettered options."""
    options = [f"{chr(ord('A') + i)}. {o}" for i, o in enumerate(question["options"])]
    return "\n".join([f"Question {question['qid']}:", question["question"], *options])


def serve(server: TestServer, models: list[str], answers: dict[str, Row]) -> None:
    """Make each model on the server replay its recorded letter for the prompt's qid."""
    for model in models:

        def reply(body: dict[str, Any], column: str = model) -> str:
            found = _QID.match(str(body["messages"][-1]["content"]))
            cell = answers[found.group(1)][column] if found else "null"
            return NULL_TEXT if cell == "null" else letter_text(cell)

        server.default(sanitize(model), reply)


def baselines(rows: list[Row], panel: list[str]) -> tuple[float, str, float]:
    """Best single model's right answers (and its name), and plain majority's expected ones."""
    right = {m: sum(r[m] == r["gold"] for r in rows) for m in panel}
    best = max(panel, key=lambda m: right[m])
    majority = 0.0
    for r in rows:
        votes = Counter(r[m] for m in panel if r[m] != "null")
        if votes:
            top = max(votes.values())
            tied = [a for a, n in votes.items() if n == top]
            majority += (r["gold"] in tied) / len(tied)
    return right[best], best, majority


def run_batch(
    server: TestServer,
    rows: list[Row],
    questions: dict[str, dict[str, Any]],
    panel: list[str],
    label_every: int,
    concurrency: int,
) -> tuple[list[dict[str, Any]], float, int, str]:
    """Run ``apex fuse --batch`` once; its output lines, wall seconds, exit code and stderr."""
    names = [sanitize(m) for m in panel]
    settings = f'synthesis = "vote"\nmax_retries = 0\ntimeout_s = 600\nconcurrency = {len(panel)}'
    settings += '\n[extract]\nkind = "choice"'
    toml = workflow_toml(
        server.base_url, names, judge=None, provider=PROVIDER, name=PROVIDER, settings=settings
    )
    base = f'base_url = "{server.base_url}"'
    assert base in toml
    toml = toml.replace(base, f"{base}\nconcurrency = {max(8, concurrency * len(panel))}")
    with tempfile.TemporaryDirectory(prefix="apex-live-") as tmp:
        work = Path(tmp)
        (work / "workflow.toml").write_text(toml, encoding="utf-8")
        with (work / "batch.jsonl").open("w", encoding="utf-8") as f:
            for i, r in enumerate(rows):
                item: dict[str, Any] = {
                    "id": r["qid"],
                    "prompt": prompt_of(questions[r["qid"]]),
                    "category": r["category"],
                    "n_options": int(r["n_options"]),
                }
                if i % label_every == 0:
                    item["expected"] = r["gold"]
                f.write(json.dumps(item) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("APEX_")}
        env["APEX_HOME"] = str(work / "home")
        cmd = [sys.executable, "-m", "apex.cli.main", "fuse", "--batch", str(work / "batch.jsonl")]
        cmd += ["-w", str(work / "workflow.toml"), "--db", f"sqlite:///{work / 'evidence.db'}"]
        cmd += ["--concurrency", str(concurrency)]
        start = time.monotonic()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - start
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return lines, seconds, done.returncode, done.stderr


def measure(
    server: TestServer,
    name: str,
    panel: list[str],
    rows: list[Row],
    questions: dict[str, dict[str, Any]],
    label_every: int,
    concurrency: int,
) -> dict[str, Any]:
    """One table row: baselines and the live run's figures for a panel and label regime."""
    print(f"running {name} (labels 1/{label_every}, {len(rows)} questions)...", file=sys.stderr)
    lines, seconds, code, stderr = run_batch(
        server, rows, questions, panel, label_every, concurrency
    )
    if not lines:
        raise SystemExit(f"apex fuse --batch gave no output (exit {code}):\n{stderr[-2000:]}")
    gold = {r["qid"]: r["gold"] for r in rows}
    live = sum(line.get("answer") == gold.get(str(line["id"])) for line in lines)
    paths = Counter(str(line.get("synthesis_path")) for line in lines)
    best, best_model, majority = baselines(rows, panel)
    n = len(rows)
    pct = {
        "best_single": 100 * best / n,
        "plain_majority": 100 * majority / n,
        "apex_live": 100 * live / n,
    }
    return {
        "panel": name,
        "models": panel,
        "label_every": label_every,
        "questions": n,
        "best_model": best_model,
        **pct,
        "margin": pct["apex_live"] - max(pct["best_single"], pct["plain_majority"]),
        "seconds": seconds,
        "exit_code": code,
        "output_lines": len(lines),
        "not_vote": n - paths["vote"],
        "paths": dict(paths),
        "unextracted": sum(extract_choice(str(line.get("answer") or "")) is None for line in lines),
        "stderr_lines": len(stderr.splitlines()),
        "call_errors": dict(
            Counter(str(c.get("error")) for ln in lines for c in ln["candidates"] if not c["ok"])
        ),
    }


def table(results: list[dict[str, Any]]) -> str:
    """The markdown table, then one line of run details per row."""
    out = [
        "| panel | labels | questions | best single | plain majority | APEX live "
        "| live - max(best, majority) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        out.append(
            f"| {r['panel']} | 1/{r['label_every']} | {r['questions']} "
            f"| {r['best_single']:.2f} ({r['best_model']}) | {r['plain_majority']:.2f} "
            f"| {r['apex_live']:.2f} | {r['margin']:+.2f} |"
        )
    out.append("")
    for r in results:
        out.append(
            f"{r['panel']} 1/{r['label_every']}: {r['seconds']:.1f}s, exit {r['exit_code']}"
            f", {r['output_lines']} lines, paths {r['paths']}, {r['unextracted']} answers "
            f"without a letter, {r['stderr_lines']} stderr lines, failed calls {r['call_errors']}"
        )
    return "\n".join(out)


def main() -> None:
    """Parse arguments, serve the panels, run the batches, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, default=DEFAULT_BENCH, help="answers.csv + questions")
    ap.add_argument("--panel", nargs="+", choices=sorted(PANELS), help="default: all")
    ap.add_argument("--models", help="a custom panel: m1,m2,... (columns of answers.csv)")
    ap.add_argument("--limit", type=int, help="first N questions of the shuffled order")
    ap.add_argument("--seed", type=int, default=0, help="question order")
    ap.add_argument("--label-every", type=int, nargs="+", default=[1], help="K: 1 item in K")
    ap.add_argument("--concurrency", type=int, default=4, help="apex fuse --concurrency")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    assert extract_choice(NULL_TEXT) is None and extract_choice(letter_text("J")) == "J"

    rows, questions = load(args.bench)
    panels = {n: PANELS[n] for n in args.panel or ([] if args.models else list(PANELS))}
    if args.models:
        panels["custom"] = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = {m for p in panels.values() for m in p} - set(rows[0])
    if unknown:
        raise SystemExit(f"not columns of answers.csv: {sorted(unknown)}")
    random.Random(args.seed).shuffle(rows)
    rows = rows[: args.limit]

    with TestServer() as server:
        serve(server, sorted({m for p in panels.values() for m in p}), {r["qid"]: r for r in rows})
        results = [
            measure(server, name, panel, rows, questions, k, args.concurrency)
            for name, panel in panels.items()
            for k in args.label_every
        ]
    print(json.dumps(results, indent=2) if args.json else table(results))


if __name__ == "__main__":
    main()
