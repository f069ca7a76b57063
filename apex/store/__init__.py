"""The evidence store: run history and per-model evidence in SQLite or PostgreSQL.

    from apex.store import EvidenceStore

    with EvidenceStore() as store:            # APEX_DB, else $APEX_HOME/apex.db
        store.record_fusion(result, events)   # one transaction, idempotent
        store.get_many(["lab:m1", "lab:m2"], "math")

Schema migrations live in the top-level ``store/`` folder (Alembic) and run on first use.
"""

from apex.store.engine import (
    APEX_DB_ENV,
    APEX_HOME_ENV,
    DEFAULT_DB_FILE,
    apex_home,
    mask_url,
    resolve_db_url,
)
from apex.store.leaderboard import LeaderboardRow
from apex.store.migrate import head_revision, migrations_dir
from apex.store.prune import PruneReport
from apex.store.repository import EvidenceStore
from apex.store.runs import StoredCandidate, StoredCritique, StoredRun

__all__ = [
    "APEX_DB_ENV",
    "APEX_HOME_ENV",
    "DEFAULT_DB_FILE",
    "EvidenceStore",
    "LeaderboardRow",
    "PruneReport",
    "StoredCandidate",
    "StoredCritique",
    "StoredRun",
    "apex_home",
    "head_revision",
    "mask_url",
    "migrations_dir",
    "resolve_db_url",
]
