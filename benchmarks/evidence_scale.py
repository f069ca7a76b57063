"""Does the evidence store slow down as evidence piles up? Compare 1,000,000 rows with none.

Fills a temporary SQLite store with ``--rows`` evidence rows (bulk-inserted directly, with the
runs, calls, candidates and critiques such evidence comes from, one run per ten events) and
aggregates consistent with them (the events folded by the in-memory store, in order). Then,
alternating between that store and an empty one, it times:

* a weight lookup: the category and global aggregates of a 5-model panel in one keyed query
  (``get_keys``), and the same through ``panel_weights`` (the same query, then the policy);
* ``record_run`` of a typical run (5 panel calls, 2 critics, a judge, 15 evidence events);
* a whole fusion cycle's framework overhead: ``apex.fuse`` with the store (panel selection,
  weights, the graph, recording) against the loopback test server answering instantly, for the
  same 5-model panel and a judge.

The "empty" store holds one recorded run (15 evidence rows), so that the panel's aggregates
exist in both stores and the lookups return the same rows. It prints the medians and the ratios
(target <= 1.2). Run:

    .venv/bin/python benchmarks/evidence_scale.py            # about a minute
    .venv/bin/python benchmarks/evidence_scale.py --rows 100000 --check
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from apex.evidence import panel_weights
from apex.fusion import fuse
from apex.graph.types import CallRecord, CandidateReport, Critique, FusionResult, Problem, Review
from apex.models import ModelClient
from apex.recording import cycle_record, run_rows
from apex.store import (
    EvidenceEvent,
    EvidenceStore,
    InMemoryAggregates,
    RunRows,
    aggregate_keys,
    record_keys,
)
from apex.store.apply import event_counts
from apex.store.tables import utcnow
from apex.testing import TestServer, roles, workflow_toml
from apex.workflow import ExtractConfig, Workflow, parse_workflow

MODELS = [f"bench:model-{i:02d}" for i in range(40)]
CATEGORIES = [f"cat-{i}" for i in range(12)]
PANEL = MODELS[:5]
CATEGORY = CATEGORIES[0]
EVENTS_PER_RUN = 10
TARGET = 1.2
_STAMP = "%Y-%m-%d %H:%M:%S.%f"


def _templates() -> list[EvidenceEvent]:
    """A varied set of events reused round-robin (every kind, with and without ground truth)."""
    out: list[EvidenceEvent] = []
    for model in MODELS:
        for category in CATEGORIES:
            out += [
                EvidenceEvent(
                    model=model, category=category, kind="answer", agreed=True, support=0.6
                ),
                EvidenceEvent(
                    model=model,
                    category=category,
                    kind="verdict",
                    correct=hash(model + category) % 3 > 0,
                    support=0.4,
                    n_options=4,
                ),
                EvidenceEvent(model=model, category=category, kind="judge", score=0.7),
                EvidenceEvent(
                    model=model, category=category, kind="failure", failure_kind="timeout"
                ),
                EvidenceEvent(
                    model=model,
                    category=category,
                    kind="finding",
                    finding_type="factual",
                    severity="medium",
                ),
            ]
    return out


def fill(store: EvidenceStore, rows: int) -> None:
    """Bulk-insert ``rows`` evidence rows, their runs, and consistent aggregates."""
    templates = _templates()
    data = [json.dumps(t.model_dump(mode="json", exclude_defaults=True)) for t in templates]
    memory = InMemoryAggregates(store.params) if store.params else InMemoryAggregates()
    counts: dict[tuple[str, str, str], Counter[str]] = {}
    start = datetime(2026, 1, 1)
    evidence, runs, calls, candidates, critiques = [], [], [], [], []
    stride = 7919  # a prime: consecutive rows hit different models and categories
    for i in range(rows):
        n = (i * stride) % len(templates)
        event = templates[n]
        run_id = f"bench-{i // EVENTS_PER_RUN}"
        at = (start + timedelta(seconds=i)).strftime(_STAMP)
        evidence.append(
            (f"{run_id}/{i}", run_id, at, event.model, event.category, event.kind, data[n])
        )
        memory.apply([event])
        for key in aggregate_keys(event):
            counts.setdefault(key, Counter()).update(event_counts(event))
        if i % EVENTS_PER_RUN == 0:
            runs.append((run_id, at, "bench", event.category, "ok", "judge", "p" * 200, "a" * 300))
            for member, model in enumerate(PANEL):
                calls.append((run_id, member, "panel", model, member, 1, 1.0, 20, 80, 1))
                candidates.append((run_id, member, "ABCDE"[member], model, 1, "t" * 400, 0.8))
            critiques += [
                (run_id, "bench:critic", 0, "A", PANEL[0], "factual", "low", "d" * 80)
            ] * 2
    aggs = [
        (
            agg.model,
            agg.category,
            agg.model_dump_json(),
            json.dumps(counts[agg.key]),
            agg.events,
            start.strftime(_STAMP),
        )
        for agg in memory
    ]
    raw = store.engine.raw_connection()
    try:
        db = raw.driver_connection
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO evidence (key, run_id, created_at, model, category, kind, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            evidence,
        )
        db.executemany(
            "INSERT INTO runs (run_id, created_at, workflow, category, status, synthesis_path, "
            "prompt, answer, analysis, latency_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', 2.0)",
            runs,
        )
        db.executemany(
            "INSERT INTO calls (run_id, seq, role, model, member, ok, latency_s, prompt_tokens, "
            "completion_tokens, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            calls,
        )
        db.executemany(
            "INSERT INTO candidates (run_id, member, label, model, ok, text, score, latency_s) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 1.0)",
            candidates,
        )
        db.executemany(
            "INSERT INTO critiques (run_id, critic_model, critic_index, label, candidate_model, "
            "type, severity, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            critiques,
        )
        db.executemany(
            "INSERT INTO aggregates (model, role, category, stats, counts, events, updated_at) "
            "VALUES (?, 'panel', ?, ?, ?, ?, ?)",
            aggs,
        )
        db.execute("COMMIT")
        db.execute("ANALYZE")
    finally:
        raw.close()
    check = store.get(PANEL[0], CATEGORY)
    assert check == memory.get(PANEL[0], CATEGORY), "aggregates inconsistent with the evidence"


def typical_run(run_id: str) -> tuple[RunRows, list[EvidenceEvent]]:
    """A 5-model cycle with two critics and a judge, and its 15 evidence events."""
    panel_calls = [
        CallRecord(
            role="panel",
            model=m,
            member=i,
            ok=True,
            latency_s=1.0,
            prompt_tokens=20,
            completion_tokens=80,
        )
        for i, m in enumerate(PANEL)
    ]
    critic_calls = [CallRecord(role="critic", model="bench:critic", ok=True) for _ in range(2)]
    judge = CallRecord(role="judge", model="bench:judge", ok=True)
    result = FusionResult(
        run_id=run_id,
        prompt="q" * 200,
        category=CATEGORY,
        workflow="bench",
        answer="a" * 300,
        synthesis_path="judge",
        candidates=[
            CandidateReport(label="ABCDE"[i], member=i, model=m, ok=True, text="t" * 400, score=0.8)
            for i, m in enumerate(PANEL)
        ],
        critiques=[
            Critique(
                critic="bench:critic",
                index=k,
                call=critic_calls[k],
                reviews=[
                    Review(
                        label="A", problems=[Problem(type="factual", severity="low", detail="d")]
                    )
                ],
            )
            for k in range(2)
        ],
        calls=[*panel_calls, *critic_calls, judge],
        judge_model="bench:judge",
    )
    events = [
        EvidenceEvent(model=m, category=CATEGORY, kind="answer", agreed=True, support=0.5)
        for m in PANEL
    ]
    events += [EvidenceEvent(model=m, category=CATEGORY, kind="judge", score=0.8) for m in PANEL]
    events += [
        EvidenceEvent(
            model=PANEL[0],
            category=CATEGORY,
            kind="finding",
            finding_type="factual",
            severity="low",
        )
    ] * 2
    events += [
        EvidenceEvent(model=m, category=CATEGORY, kind="verdict", correct=True) for m in PANEL[:3]
    ]
    return run_rows(result, cycle_record(result, workflow_extract()), utcnow()), events


def workflow_extract() -> ExtractConfig:
    """How the benchmark cycle's answers are compared (numbers)."""
    return ExtractConfig(kind="number")


def median_s(action: Callable[[], object], reps: int) -> float:
    """Median wall time of ``action`` over ``reps`` runs."""
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cycle_workflow(base_url: str) -> Workflow:
    """The benchmark panel on the test server, with a judge."""
    panel = [m.removeprefix("bench:") for m in PANEL]
    settings = f'category = "{CATEGORY}"'
    text = workflow_toml(base_url, panel, provider="bench", name="scale", settings=settings)
    return parse_workflow(text, "scale.toml")


def cycle_median_s(store: EvidenceStore, workflow: Workflow, reps: int) -> float:
    """Median wall time of a whole fusion cycle with the store, over ``reps`` cycles."""

    async def run() -> float:
        times = []
        async with ModelClient(workflow.client_settings) as client:
            for _ in range(reps):
                started = time.perf_counter()
                await fuse("q", workflow=workflow, client=client, store=store)
                times.append(time.perf_counter() - started)
        return statistics.median(times)

    return asyncio.run(run())


def measure(
    big: EvidenceStore, empty: EvidenceStore, reps: int, rounds: int, workflow: Workflow
) -> dict[str, list[float]]:
    """Medians per store and measure, alternating stores round by round to cancel drift."""
    keys = record_keys(PANEL, CATEGORY)
    out: dict[str, list[float]] = {}
    for r in range(rounds):
        for name, store in (("big", big), ("empty", empty)):
            out.setdefault(f"lookup/{name}", []).append(
                median_s(lambda s=store: s.get_keys(keys), reps)
            )
            out.setdefault(f"weights/{name}", []).append(
                median_s(lambda s=store: panel_weights(s, PANEL, CATEGORY, 4), reps // 4)
            )
            runs = iter(typical_run(f"{name}-{r}-{i}") for i in range(reps // 10))
            out.setdefault(f"record/{name}", []).append(
                median_s(lambda s=store, it=runs: s.record_run(*next(it)), reps // 10)
            )
            out.setdefault(f"cycle/{name}", []).append(
                cycle_median_s(store, workflow, max(reps // 100, 5))
            )
    return out


def main() -> int:
    """Fill, measure, print; exit 1 with ``--check`` when a ratio misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="evidence rows to fill")
    parser.add_argument("--reps", type=int, default=2000, help="lookups per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if a ratio > {TARGET}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="apex-bench-") as tmp:
        big = EvidenceStore(f"sqlite:///{Path(tmp) / 'big.db'}")
        empty = EvidenceStore(f"sqlite:///{Path(tmp) / 'empty.db'}")
        empty.record_run(*typical_run("seed"))  # the panel's aggregates exist in both
        started = time.perf_counter()
        fill(big, args.rows)
        size = (Path(tmp) / "big.db").stat().st_size
        print(
            f"filled {args.rows:,} evidence rows, {args.rows // EVENTS_PER_RUN:,} runs, "
            f"{len(MODELS) * (len(CATEGORIES) + 1)} aggregates in "
            f"{time.perf_counter() - started:.1f}s ({size / 1e6:.0f} MB)"
        )
        with TestServer() as server:
            server.default("judge", roles.judge("x"))
            cycle_median_s(empty, cycle_workflow(server.base_url), 3)  # warm-up
            figures = measure(big, empty, args.reps, args.rounds, cycle_workflow(server.base_url))
        big.close()
        empty.close()
    missed = False
    print(
        f"{'measure':<34}{'empty':>12}{'1M rows' if args.rows == 1_000_000 else 'filled':>12}"
        f"{'ratio':>8}"
    )
    for what, label in (
        ("lookup", "weight lookup (5-model panel, 1 query)"),
        ("weights", "panel_weights (1 query + policy)"),
        ("record", "record_run (typical run)"),
        ("cycle", "fusion cycle overhead (fuse+store)"),
    ):
        small, large = (
            statistics.median(figures[f"{what}/empty"]),
            statistics.median(figures[f"{what}/big"]),
        )
        ratio = large / small
        missed |= ratio > TARGET and what != "weights"
        print(f"{label:<34}{small * 1e6:>10.0f}us{large * 1e6:>10.0f}us{ratio:>8.2f}")
    print(
        f"target: ratio <= {TARGET} for weight lookup, record_run and the cycle: "
        f"{'MISSED' if missed else 'met'}"
    )
    return 1 if (missed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
