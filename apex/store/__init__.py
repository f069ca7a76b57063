"""The evidence store: run history, evidence events and per-model aggregates in SQL.

    from apex.store import EvidenceStore

    with EvidenceStore() as store:               # APEX_DB, else $APEX_HOME/apex.db
        store.record_run(rows, events)           # one transaction, idempotent
        store.get_keys(record_keys(["lab:m1", "lab:m2"], "math"))

Schema migrations live in the top-level ``store/`` folder (Alembic) and run on first use.
"""

from apex.store.aggregate import (
    DEFAULT_FOLD,
    GLOBAL_CATEGORY,
    AggKey,
    AggregateReader,
    AggregateStore,
    EvidenceEvent,
    EvidenceKind,
    FoldParams,
    ModelAggregate,
    aggregate_keys,
    apply_event,
    record_keys,
)
from apex.store.engine import (
    APEX_DB_ENV,
    APEX_HOME_ENV,
    DEFAULT_DB_FILE,
    apex_home,
    mask_url,
    resolve_db_url,
)
from apex.store.leaderboard import LeaderboardRow
from apex.store.memory import InMemoryAggregates
from apex.store.migrate import head_revision, migrations_dir
from apex.store.prune import PruneReport
from apex.store.repository import EvidenceStore
from apex.store.rows import RunRows
from apex.store.runs import StoredCall, StoredCandidate, StoredCritique, StoredRun

__all__ = [
    "APEX_DB_ENV",
    "APEX_HOME_ENV",
    "DEFAULT_DB_FILE",
    "DEFAULT_FOLD",
    "GLOBAL_CATEGORY",
    "AggKey",
    "AggregateReader",
    "AggregateStore",
    "EvidenceEvent",
    "EvidenceKind",
    "EvidenceStore",
    "FoldParams",
    "InMemoryAggregates",
    "LeaderboardRow",
    "ModelAggregate",
    "PruneReport",
    "RunRows",
    "StoredCall",
    "StoredCandidate",
    "StoredCritique",
    "StoredRun",
    "aggregate_keys",
    "apex_home",
    "apply_event",
    "head_revision",
    "mask_url",
    "migrations_dir",
    "record_keys",
    "resolve_db_url",
]
