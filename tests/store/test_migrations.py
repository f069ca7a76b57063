"""Alembic migrations: empty to head, 0001 with data to head, tables matching migrations."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from apex.errors import StoreError
from apex.store import EvidenceEvent, EvidenceStore, head_revision, migrations_dir
from apex.store.engine import create_store_engine
from apex.store.migrate import current_revision, revisions, upgrade
from apex.store.tables import metadata
from tests.store.factories import events_for, fusion_result, record_fusion

INDEXES = {
    "ix_runs_created_at",
    "ix_calls_run_id",
    "ix_candidates_run_id",
    "ix_critiques_run_id",
    "ix_evidence_run_id",
    "ix_evidence_created_at",
}


def test_scripts_are_found_and_linear() -> None:
    assert (migrations_dir() / "env.py").is_file()
    assert revisions() == ["0001", "0002", "0003", "0004", "0005"]
    assert head_revision() == "0005"


def test_empty_database_to_head_matches_the_tables(db_url: str) -> None:
    engine = create_store_engine(db_url)
    try:
        assert current_revision(engine) is None
        assert upgrade(engine) == "0005"
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
            indexes = {
                ix["name"]
                for table in metadata.tables
                for ix in sa.inspect(conn).get_indexes(table)
            }
        assert diff == []
        assert indexes >= INDEXES
    finally:
        engine.dispose()


def test_first_revision_with_data_to_head_keeps_the_data(db_url: str) -> None:
    engine = create_store_engine(db_url)
    try:
        assert upgrade(engine, "0001") == "0001"
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO runs (run_id, created_at, workflow, category, status, "
                    "synthesis_path, prompt, answer, analysis, latency_s) VALUES "
                    "('old', :at, 'lab', 'math', 'ok', 'judge', 'p', 'a', '{}', 1.5)"
                ),
                {"at": datetime(2026, 1, 2)},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO aggregates (model, category, stats, counts, events, updated_at) "
                    "VALUES ('lab:m1', 'math', :stats, '{}', 7, :at)"
                ),
                {
                    "stats": '{"model": "lab:m1", "category": "math", "events": 7}',
                    "at": datetime(2026, 1, 2),
                },
            )
    finally:
        engine.dispose()
    with EvidenceStore(db_url) as store:  # first use migrates to head
        assert store.revision() == head_revision()
        old = store.run("old")
        assert old is not None and old.prompt == "p" and old.pruned_at is None
        assert store.get("lab:m1", "math").events == 7
        result = fusion_result("new")
        record_fusion(store, result, events_for(result))
        assert store.get("lab:m1", "math").events == 7 + 4  # answer, judge, 2 findings


def test_upgrade_is_a_noop_at_head(sqlite_url: str) -> None:
    with EvidenceStore(sqlite_url) as store:
        assert store.upgrade() == head_revision()
        assert store.upgrade() == head_revision()


def test_a_newer_schema_is_refused(sqlite_url: str) -> None:
    with EvidenceStore(sqlite_url) as store, store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(StoreError, match="0099 is newer than this APEX knows"):
        EvidenceStore(sqlite_url)


def test_role_migration_keeps_every_aggregate_as_a_panel_record(db_url: str) -> None:
    """0003 -> 0004 on a store that holds evidence: each aggregate becomes the panel record."""
    engine = create_store_engine(db_url)
    stats = {
        "lab:m1": {"model": "lab:m1", "category": "math", "events": 9, "gt_n": 5.0,
                   "gt_correct": 4.0, "gt_weight": 0.7, "consecutive_failures": 2},
        "lab:judge": {"model": "lab:judge", "category": "*", "events": 3, "failures": 3.0,
                      "consecutive_failures": 3, "last_failure_kind": "schema_mismatch"},
    }  # fmt: skip
    try:
        assert upgrade(engine, "0003") == "0003"
        with engine.begin() as conn:
            for model, row in stats.items():
                conn.execute(
                    sa.text(
                        "INSERT INTO aggregates (model, category, stats, counts, events, "
                        "updated_at) VALUES (:m, :c, :s, '{\"answer\": 4}', :n, :at)"
                    ),
                    {"m": model, "c": row["category"], "s": json.dumps(row), "n": row["events"],
                     "at": datetime(2026, 11, 30)},
                )  # fmt: skip
            conn.execute(
                sa.text(
                    "INSERT INTO evidence (key, run_id, created_at, model, category, kind, data) "
                    "VALUES ('r/0/lab:m1/answer', 'r', :at, 'lab:m1', 'math', 'answer', '{}')"
                ),
                {"at": datetime(2026, 11, 30)},
            )
        assert upgrade(engine) == head_revision()
        with engine.connect() as conn:
            roles = conn.execute(sa.text("SELECT model, role FROM aggregates ORDER BY model"))
            assert sorted(roles) == [("lab:judge", "panel"), ("lab:m1", "panel")]
            assert conn.execute(sa.text("SELECT role FROM evidence")).scalar_one() == "panel"
    finally:
        engine.dispose()
    with EvidenceStore(db_url) as store:
        m1 = store.get("lab:m1", "math")
        assert (m1.events, m1.gt_n, m1.gt_weight, m1.consecutive_failures) == (9, 5.0, 0.7, 2)
        assert store.get("lab:judge", "*").last_failure_kind == "schema_mismatch"
        assert store.get("lab:m1", "math", role="judge").events == 0  # a new, separate record
        rows = {(r.model, r.role): r for r in store.leaderboard("math")}
        assert rows[("lab:m1", "panel")].calls == 4
        store.apply([EvidenceEvent(model="lab:m1", category="math", role="judge", kind="answer")])
        assert store.get("lab:m1", "math").events == 9  # the panel record is untouched
        assert store.get("lab:m1", "math", role="judge").events == 1
