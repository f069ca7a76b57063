"""The store's conformance suite: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa

from apex.errors import StoreError
from apex.evidence import Truth, cycle_events, panel_weights
from apex.evidence.replay import recorded_cycle
from apex.store import EvidenceStore, InMemoryAggregates
from apex.store.aggregate import (
    AggKey,
    EvidenceEvent,
    ModelAggregate,
    aggregate_keys,
    apply_event,
)
from apex.store.buffered import WriteBehind
from apex.store.tables import AGGREGATES, CALLS, CANDIDATES, CRITIQUES, EVIDENCE, RUNS
from tests.store.factories import (
    PANEL,
    events_for,
    fusion_result,
    fusion_rows,
    panel_records,
    record_fusion,
    verdict,
)


@pytest.fixture
def store(db_url: str) -> Iterator[EvidenceStore]:
    with EvidenceStore(db_url) as opened:
        yield opened


def reference(events: Iterable[EvidenceEvent]) -> dict[AggKey, ModelAggregate]:
    """The aggregates a correct store holds after ``events``: apply_event folded in order."""
    out: dict[AggKey, ModelAggregate] = {}
    for event in events:
        for key in aggregate_keys(event):
            out[key] = apply_event(out.get(key) or ModelAggregate.empty(*key), event)
    return out


def count(store: EvidenceStore, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def assert_aggregates(store: EvidenceStore, expected: dict[AggKey, ModelAggregate]) -> None:
    assert count(store, AGGREGATES) == len(expected)
    assert store.get_keys(expected) == expected


def test_record_fusion_writes_every_part(store: EvidenceStore) -> None:
    result = fusion_result()
    events = events_for(result)
    record_fusion(store, result, events)

    assert count(store, RUNS) == 1
    assert count(store, CALLS) == len(result.calls) == 5
    assert count(store, CANDIDATES) == 3
    assert count(store, CRITIQUES) == 2
    assert count(store, EVIDENCE) == len(events)
    assert_aggregates(store, reference(events))

    stored = store.run("run-1")
    assert stored is not None
    assert stored.status == "ok" and stored.synthesis_path == "judge"
    assert stored.prompt == result.prompt and stored.answer == result.answer
    assert stored.judge_model == "lab:judge" and stored.analysis == result.analysis.model_dump()
    assert stored.model_by_label() == {"A": "lab:m1", "B": "lab:m2"}
    assert [c.extracted for c in stored.candidates] == ["4", "5", None]
    assert [c.score for c in stored.candidates] == pytest.approx([0.9, 0.7, None])
    assert [c.model_dump(exclude={"seq"}) for c in stored.calls] == [
        c.model_dump(mode="json") for c in result.calls
    ]
    failed = stored.candidates[2]
    assert not failed.ok and failed.label is None and failed.error is not None
    high = stored.critiques[0]
    assert (high.critic_model, high.label, high.candidate_model) == ("lab:critic", "A", "lab:m1")
    assert (high.type, high.severity, high.detail) == ("factual", "high", "wrong number")
    assert store.run("no-such-run") is None


def test_record_fusion_is_idempotent_on_run_id(store: EvidenceStore) -> None:
    result = fusion_result()
    events = events_for(result)
    record_fusion(store, result, events)
    record_fusion(store, result, events)  # a replay after a crash
    record_fusion(store, result, events[::-1])  # even in another order
    assert count(store, RUNS) == 1
    assert count(store, CALLS) == 5
    assert count(store, CRITIQUES) == 2
    assert count(store, EVIDENCE) == len(events)
    assert_aggregates(store, reference(events))


def test_several_runs_are_recorded_in_one_write_as_one_at_a_time(store: EvidenceStore) -> None:
    results = [fusion_result(f"run-{i}") for i in (1, 2, 3)]
    events = [events_for(result) for result in results]
    record_fusion(store, results[2], events[2])  # already stored
    batch = [(fusion_rows(r), e) for r, e in zip(results, events, strict=True)]
    batch.insert(2, batch[0])  # the same run twice in one write: new once
    assert store.record_runs(batch) == [True, True, False, False]
    assert store.record_runs([]) == []
    assert count(store, RUNS) == 3
    assert count(store, CALLS) == 3 * len(results[0].calls)
    assert count(store, CRITIQUES) == 3 * 2
    assert count(store, EVIDENCE) == sum(len(e) for e in events)
    assert_aggregates(store, reference(e for run in events for e in run))
    with store.engine.connect() as conn:
        per_run = dict(
            conn.execute(sa.select(CALLS.c.run_id, sa.func.count()).group_by(CALLS.c.run_id)).all()
        )
    assert per_run == {r.run_id: len(r.calls) for r in results}


def test_a_failing_run_fails_its_whole_write(store: EvidenceStore) -> None:
    good, broken = fusion_result("run-1"), fusion_result("run-2")
    broken.critiques[0].critic = None  # type: ignore[assignment]
    batch = [(fusion_rows(r), events_for(r)) for r in (good, broken)]
    with pytest.raises(StoreError, match="recording runs"):
        store.record_runs(batch)
    for table in (RUNS, CALLS, CANDIDATES, CRITIQUES, EVIDENCE, AGGREGATES):
        assert count(store, table) == 0, table.name


def test_replayed_keys_are_skipped_with_their_aggregate_update(store: EvidenceStore) -> None:
    first = [verdict("lab:m1", "math", True), verdict("lab:m1", "math", False)]
    assert store.apply_count(first, run_id="feedback-1") == 2
    assert store.apply_count(first, run_id="feedback-1") == 0  # whole batch replayed
    more = [*first, verdict("lab:m1", "math", True)]  # replay plus one new event
    assert store.apply_count(more, run_id="feedback-1") == 1
    assert count(store, EVIDENCE) == 3
    assert_aggregates(store, reference(more))
    agg = store.get("lab:m1", "math")
    assert agg.events == 3 and agg.gt_n == pytest.approx(3, rel=1e-3)


def test_duplicate_key_inside_one_batch_counts_once(store: EvidenceStore) -> None:
    class Keyed(EvidenceEvent):
        key: str

    event = Keyed(key="k1", model="lab:m1", category="math", kind="answer")
    store.apply([event, event])
    assert count(store, EVIDENCE) == 1
    assert store.get("lab:m1", "math").events == 1


def test_category_and_global_aggregates(store: EvidenceStore) -> None:
    math, code = fusion_result("r1", "math"), fusion_result("r2", "code")
    events = events_for(math) + events_for(code)
    record_fusion(store, math, events_for(math))
    record_fusion(store, code, events_for(code))
    assert_aggregates(store, reference(events))
    everywhere = store.get("lab:m3", "*")
    assert everywhere.failures_total == 2 and everywhere.last_failure_kind == "timeout"
    assert store.get("lab:m3", "math").failures_total == 1


def test_unknown_model_is_empty(store: EvidenceStore) -> None:
    assert store.get("lab:never", "math") == ModelAggregate.empty("lab:never", "panel", "math")
    many = panel_records(store, ["lab:m1", "lab:never", "lab:m1"], "math")
    assert list(many) == ["lab:m1", "lab:never"]
    assert all(a.events == 0 for a in many.values())


def test_get_many_reads_a_panel(store: EvidenceStore) -> None:
    result = fusion_result()
    record_fusion(store, result, events_for(result))
    aggs = panel_records(store, ["lab:m1", "lab:m2", "lab:m3"], "math")
    assert aggs["lab:m1"].judge_mean == pytest.approx(0.9)
    assert aggs["lab:m1"].findings == pytest.approx(2, rel=1e-3)
    assert aggs["lab:m3"].failures_total == 1 and aggs["lab:m3"].answers == 0


def test_weights_match_the_in_memory_store(store: EvidenceStore) -> None:
    """The SQL store is a drop-in AggregateStore: same aggregates, same panel weights."""
    memory = InMemoryAggregates()
    models = list(PANEL)
    answers = [
        ({"lab:m1": "A", "lab:m2": "A", "lab:m3": "B", "lab:m4": None, "lab:m5": "A"}, "A"),
        ({"lab:m1": "C", "lab:m2": "B", "lab:m3": "B", "lab:m4": "B", "lab:m5": "D"}, "B"),
        ({"lab:m1": "D", "lab:m2": "A", "lab:m3": "D", "lab:m4": "C", "lab:m5": "D"}, "D"),
    ] * 4
    for i, (votes, gold) in enumerate(answers):
        category = "math" if i % 3 else "law"
        weights = panel_weights(memory, models, category, 4)
        assert panel_weights(store, models, category, 4) == weights
        events = cycle_events(recorded_cycle(votes, weights, category, 4), Truth(expected=gold))
        memory.apply(events)
        store.apply(events, run_id=f"q{i}")
    for category in ("math", "law"):
        assert panel_weights(store, models, category, 4) == panel_weights(
            memory, models, category, 4
        )
    keys: list[AggKey] = [(m, "panel", c) for m in models for c in ("math", "law", "*", "none")]
    assert store.get_keys(keys) == memory.get_keys(keys)
    assert len(memory) == count(store, AGGREGATES)


def test_leaderboard(store: EvidenceStore) -> None:
    result = fusion_result()
    record_fusion(store, result, events_for(result))
    store.apply([verdict("lab:m2", "math", True), verdict("lab:m1", "math", False)])
    rows = {r.model: r for r in store.leaderboard("math")}
    assert set(rows) == {"lab:m1", "lab:m2", "lab:m3"}
    assert next(r.model for r in store.leaderboard("math")) == "lab:m2"  # accuracy 1.0 first
    m3 = rows["lab:m3"]
    assert (m3.calls, m3.failures, m3.failures_by_kind) == (1, 1, {"timeout": 1})
    assert m3.failure_rate == pytest.approx(1.0) and m3.judge_mean is None
    m1 = rows["lab:m1"]
    assert (m1.calls, m1.failures, m1.findings, m1.judge_scores) == (1, 0, 2, 1)
    assert m1.judge_mean == pytest.approx(0.9) and m1.accuracy == pytest.approx(0.0)
    assert rows["lab:m2"].accuracy == pytest.approx(1.0)
    assert {r.model for r in store.leaderboard(None)} == set(rows)
    assert all(r.category == "*" for r in store.leaderboard(None))
    assert store.leaderboard("no-such-category") == []


def test_failed_run_is_recorded(store: EvidenceStore) -> None:
    result = fusion_result().model_copy(
        update={"synthesis_path": "all_panel_failed", "answer": "", "judge_model": None}
    )
    record_fusion(store, result, [])
    stored = store.run("run-1")
    assert stored is not None and stored.status == "failed" and stored.answer == ""


def test_a_failing_write_leaves_nothing_behind(store: EvidenceStore) -> None:
    broken = fusion_result()
    events = events_for(broken)
    # The critiques are written after the run, calls and candidates: a NULL critic fails there.
    broken.critiques[0].critic = None  # type: ignore[assignment]
    with pytest.raises(StoreError, match="recording run run-1"):
        record_fusion(store, broken, events)
    for table in (RUNS, CALLS, CANDIDATES, CRITIQUES, EVIDENCE, AGGREGATES):
        assert count(store, table) == 0, table.name


def test_write_behind_writes_what_the_store_would_have_folded(store: EvidenceStore) -> None:
    """A write-behind buffer folds in memory and writes in batches; the database ends exactly
    where folding every batch in its own transaction would have put it."""
    models = list(PANEL)
    direct = InMemoryAggregates()
    record_fusion(store, fusion_result("before"), events_for(fusion_result("before")))
    direct.apply(events_for(fusion_result("before")))  # the buffer starts from stored state
    buffer = WriteBehind(store, flush_every=4)
    votes = [
        {"lab:m1": "A", "lab:m2": "A", "lab:m3": "B", "lab:m4": None, "lab:m5": "A"},
        {"lab:m1": "C", "lab:m2": "B", "lab:m3": "B", "lab:m4": "B", "lab:m5": "D"},
    ]
    for i in range(10):
        answers = votes[i % 2]
        weights = panel_weights(buffer, models, "math", 4)
        assert weights == panel_weights(direct, models, "math", 4)
        events = cycle_events(recorded_cycle(answers, weights, "math", 4), Truth(expected="A"))
        buffer.apply(events)
        direct.apply(events)
    wanted: list[AggKey] = [(m, "panel", c) for m in models for c in ("math", "*")]
    assert store.get_keys(wanted) != direct.get_keys(wanted)  # two batches still in memory
    buffer.flush()
    assert store.get_keys(wanted) == direct.get_keys(wanted)
    assert count(store, EVIDENCE) == len(events_for(fusion_result("before"))) + 10 * len(models)
    rows = {r.model: r for r in store.leaderboard("math")}
    assert rows["lab:m1"].calls == 1 + 10 and rows["lab:m4"].calls == 10


def test_events_without_a_run_are_stored_as_they_are(store: EvidenceStore) -> None:
    """Events without a run go through the driver's executemany; each row still reads back as
    its event, under its own random key, stamped like every other row."""
    answers = {"lab:m1": "A", "lab:m2": "A", "lab:m3": "B", "lab:m4": None, "lab:m5": "A"}
    events = cycle_events(recorded_cycle(answers, {}, "math", 4), Truth(expected="A"))
    store.apply(events)
    store.apply(events)  # no run, so no replay: stored again under new keys
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(EVIDENCE)).all()
    assert len(rows) == 2 * len(events) == len({row.key for row in rows})
    assert all(row.key.startswith("anon/") and row.run_id is None for row in rows)
    stored = sorted(EvidenceEvent.model_validate(row.data).model_dump_json() for row in rows)
    assert stored == sorted(event.model_dump_json() for event in [*events, *events])
    assert all(isinstance(row.created_at, datetime) for row in rows)
    assert store.get("lab:m1", "math").events == 2
