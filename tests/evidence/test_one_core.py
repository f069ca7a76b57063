"""Live fusion learns exactly as replay measures: same events, same aggregates, same weights.

One recorded question set (letters per model, nulls included, two categories, four or ten
options) is fed through ``apex.fuse`` with a store, as ``apex fuse --batch`` does (a panel that
replays the recorded answers over loopback HTTP, vote synthesis, each item's ``expected`` and
``n_options``), and through ``run_replay``; after every question both hold the same events and
the same aggregates, so both give the same weights.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

import pytest
import sqlalchemy as sa

from apex.evidence import panel_weights, run_replay, weights_of
from apex.evidence.replay import load_answers
from apex.fusion import fuse
from apex.store import (
    AggKey,
    EvidenceEvent,
    EvidenceStore,
    InMemoryAggregates,
    ModelAggregate,
    record_keys,
)
from apex.store.tables import EVIDENCE
from apex.testing import TestServer, workflow_toml
from apex.workflow import parse_workflow

MODELS = ("m1", "m2", "m3", "m4", "m5")
ACCURACY = (0.8, 0.6, 0.5, 0.4, 0.3)
CATEGORIES = ("math", "law")


def write_answers(path: Path, n: int = 40, seed: int = 7) -> Path:
    """A recorded panel: n questions, some models silent (null) on some."""
    rng = random.Random(seed)
    lines = ["qid,category,n_options,gold," + ",".join(MODELS)]
    for q in range(n):
        k = 4 if q % 3 else 10
        gold = "ABCDEFGHIJ"[rng.randrange(k)]
        cells = []
        for acc in ACCURACY:
            if rng.random() < 0.1:
                cells.append("null")
            elif rng.random() < acc:
                cells.append(gold)
            else:
                cells.append("ABCDEFGHIJ"[rng.randrange(k)])
        lines.append(f"q{q},{CATEGORIES[q % 2]},{k},{gold}," + ",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def unprefixed(event: EvidenceEvent) -> EvidenceEvent:
    """A live event with its models named as the replay names them (no ``lab:``)."""
    peers = {m.removeprefix("lab:"): a for m, a in (event.peers or {}).items()} or None
    return event.model_copy(update={"model": event.model.removeprefix("lab:"), "peers": peers})


class Recording(InMemoryAggregates):
    """The replay's store, keeping each question's events and the aggregates after it."""

    def __init__(self, keys: list[AggKey]) -> None:
        super().__init__()
        self.keys = keys
        self.batches: list[list[EvidenceEvent]] = []
        self.after: list[dict[AggKey, ModelAggregate]] = []

    def apply(self, events: Iterable[EvidenceEvent]) -> None:
        batch = list(events)
        super().apply(batch)
        self.batches.append(batch)
        self.after.append(self.get_keys(self.keys))


def run_events(store: EvidenceStore, run_id: str) -> list[EvidenceEvent]:
    """The events a run recorded, in their order."""
    query = (
        sa.select(EVIDENCE.c.role, EVIDENCE.c.data)
        .where(EVIDENCE.c.run_id == run_id)
        .order_by(EVIDENCE.c.id)
    )
    with store.engine.connect() as conn:
        return [
            EvidenceEvent.model_validate(r.data | {"role": r.role}) for r in conn.execute(query)
        ]


@pytest.mark.parametrize("ground_truth", [True, False])
async def test_live_fusion_and_replay_learn_the_same(
    server: TestServer, tmp_path: Path, ground_truth: bool
) -> None:
    table = load_answers(write_answers(tmp_path / "answers.csv"))
    panel = [f"lab:{m}" for m in MODELS]
    keys = [k for c in CATEGORIES for k in record_keys(panel, c)]
    # replay names models by column; live by provider:model. Compare with the prefix removed.
    replay_store = Recording([(m.removeprefix("lab:"), r, c) for m, r, c in keys])
    report = run_replay(table, seed=3, ground_truth=ground_truth, store=replay_store)

    by_qid = {qid: i for i, qid in enumerate(table.qids)}
    for model in MODELS:
        column = table.models.index(model)

        def answer(body: dict[str, object], column: int = column) -> str:
            qid = str(body["messages"][-1]["content"]).split(":", 1)[0]  # type: ignore[index]
            letter = table.answers[by_qid[qid]][column]
            return "No idea." if letter is None else f"The answer is ({letter})."

        server.default(model, answer)
    text = workflow_toml(
        server.base_url,
        MODELS,
        judge=None,
        settings='synthesis = "vote"\nmax_retries = 0\n[extract]\nkind = "choice"',
    )
    wf = parse_workflow(text, "replayed.toml")
    order = list(range(len(table.qids)))
    random.Random(3).shuffle(order)  # the replay's question order for seed 3
    with EvidenceStore(f"sqlite:///{tmp_path / 'live.db'}") as store:
        for step, q in enumerate(order):
            qid = table.qids[q]
            await fuse(
                f"{qid}: which option?",
                workflow=wf,
                store=store,
                category=table.categories[q],
                expected=table.gold[q] if ground_truth else None,
                n_options=table.n_options[q],
                run_id=f"run-{qid}",
            )
            live = [unprefixed(e) for e in run_events(store, f"run-{qid}")]
            assert live == replay_store.batches[step], f"events differ at question {step}"
            after = {
                (m.removeprefix("lab:"), r, c): agg.model_copy(
                    update={
                        "model": m[4:],
                        "pairs": {p.removeprefix("lab:"): v for p, v in agg.pairs.items()},
                    }
                )
                for (m, r, c), agg in store.get_keys(keys).items()
            }
            assert after == replay_store.after[step], f"aggregates differ at question {step}"
            cat, k = table.categories[q], table.n_options[q]
            live_w = panel_weights(store, panel, cat, k)
            replay_w = weights_of(replay_store.after[step], MODELS, cat, k)
            assert list(live_w.values()) == list(replay_w.values())
    if ground_truth:  # the weights did learn
        assert any(abs(m.final_weight - 1.0) > 0.05 for m in report.models)
    else:  # agreement was recorded (on 40 questions it does not clear the threshold)
        assert all(agg.agree_n > 0 for agg in replay_store.after[-1].values())
