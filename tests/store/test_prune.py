"""Retention: raw rows and texts go, aggregates stay, the SQLite file shrinks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from apex.store import EvidenceStore
from apex.store.tables import CALLS, CRITIQUES, EVIDENCE, RUNS, utcnow
from tests.store.factories import PANEL, events_for, fusion_result, panel_records, record_fusion


def _age_everything(store: EvidenceStore, days: int) -> None:
    """Pretend every row so far was recorded ``days`` ago."""
    then = utcnow() - timedelta(days=days)
    with store.engine.begin() as conn:
        for table in (RUNS, EVIDENCE):
            conn.execute(sa.update(table).values(created_at=then))


def _count(store: EvidenceStore, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_prune_keeps_aggregates_and_recent_rows(db_url: str) -> None:
    with EvidenceStore(db_url) as store:
        old = fusion_result("old")
        record_fusion(store, old, events_for(old))
        _age_everything(store, 100)
        new = fusion_result("new")
        record_fusion(store, new, events_for(new))
        before = panel_records(store, list(PANEL[:3]), "math")
        board = store.leaderboard("math")

        report = store.prune(timedelta(days=90))

        assert (report.runs, report.calls, report.critiques) == (1, 5, 2)
        assert report.candidates == 2  # the failed member had no text
        assert report.evidence == len(events_for(old))
        assert panel_records(store, list(PANEL[:3]), "math") == before
        assert store.leaderboard("math") == board
        pruned, kept = store.run("old"), store.run("new")
        assert pruned is not None and kept is not None
        assert pruned.prompt == "" and pruned.answer == "" and pruned.pruned_at is not None
        assert pruned.calls == [] and pruned.critiques == []
        assert [c.text for c in pruned.candidates] == ["", "", ""]
        assert pruned.model_by_label() == {"A": "lab:m1", "B": "lab:m2"}  # feedback still works
        assert kept.prompt == new.prompt and len(kept.calls) == 5 and kept.pruned_at is None
        assert _count(store, CALLS) == 5 and _count(store, CRITIQUES) == 2
        assert _count(store, EVIDENCE) == len(events_for(new))
        assert store.prune(timedelta(days=90)).runs == 0  # already pruned


def test_prune_shrinks_the_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    with EvidenceStore(f"sqlite:///{path}") as store:
        for i in range(150):
            result = fusion_result(f"r{i}")
            record_fusion(store, result, events_for(result))
        _age_everything(store, 200)
        before = panel_records(store, list(PANEL[:3]), "math")

        report = store.prune(timedelta(days=90))

        assert report.bytes_before is not None and report.bytes_after is not None
        assert report.bytes_after < report.bytes_before * 0.6
        assert path.stat().st_size == report.bytes_after
        assert panel_records(store, list(PANEL[:3]), "math") == before


def test_negative_age_is_refused(sqlite_url: str) -> None:
    with EvidenceStore(sqlite_url) as store, pytest.raises(ValueError, match="negative"):
        store.prune(timedelta(days=-1))
