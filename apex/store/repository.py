"""The evidence store: runs, calls, candidates, critiques, evidence and aggregates in SQL.

:class:`EvidenceStore` is the SQL implementation of the
:class:`~apex.store.aggregate.AggregateStore` protocol, plus what the rest of APEX records and
reads: ``record_run`` writes a whole run and its evidence in one transaction (idempotent on
``run_id`` and on each event's ``key``), ``run`` reads one back, ``leaderboard`` summarizes the
aggregates, ``prune`` applies retention. The schema migrates itself to head on first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy import exc

from apex.store import migrate
from apex.store.aggregate import (
    GLOBAL_CATEGORY,
    AggKey,
    EvidenceEvent,
    FoldParams,
    ModelAggregate,
)
from apex.store.apply import apply_events, apply_run_events, insert_ignore, keyed_aggregates
from apex.store.engine import (
    create_store_engine,
    mask_url,
    read_transaction,
    resolve_db_url,
    sqlite_file,
    store_error,
    write_transaction,
)
from apex.store.leaderboard import LeaderboardRow, leaderboard_rows
from apex.store.migrate import head_revision
from apex.store.prune import PruneReport, prune
from apex.store.rows import RunRows, row_values
from apex.store.runs import StoredRun, load_run
from apex.store.tables import AGGREGATES, CALLS, CANDIDATES, CRITIQUES, RUNS
from apex.types import Role

_DAMAGED = ("malformed", "not a database", "corrupt")
"""Words of an SQLite error that mean the file itself is damaged."""


class EvidenceStore:
    """Evidence and run history in SQLite (default) or PostgreSQL; safe across processes.

    ``url`` wins, else ``APEX_DB``, else ``workflow_db`` (a workflow's ``db`` key), else
    ``$APEX_HOME/apex.db``. Every failure raises :class:`~apex.errors.StoreError`.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        workflow_db: str | None = None,
        params: FoldParams | None = None,
        migrate: bool = True,
        read_only: bool = False,
    ) -> None:
        self.url = resolve_db_url(url, workflow_db)
        """The database URL (may hold a password: show :attr:`masked_url` instead)."""
        self.params = params
        """How events are folded (None: ``DEFAULT_FOLD``)."""
        path = sqlite_file(self.url)
        self.read_only = read_only and path is not None and path.is_file()
        """Whether an existing SQLite file was opened for reading only (``read_only``: for
        commands that only read, so they work on a read-only file system; a missing file is
        created as usual)."""
        self.engine = create_store_engine(self.url, read_only=self.read_only)
        """The SQLAlchemy engine."""
        if self.read_only and migrate and self.revision() != head_revision():
            # an older schema must be migrated first: open it for writing, as usual
            self.engine.dispose()
            self.read_only = False
            self.engine = create_store_engine(self.url)
        if migrate and not self.read_only:
            self.upgrade()

    @property
    def masked_url(self) -> str:
        """The URL with any password masked, for messages."""
        return mask_url(self.url)

    def __repr__(self) -> str:
        return f"EvidenceStore({self.masked_url!r})"

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def __enter__(self) -> EvidenceStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def revision(self) -> str | None:
        """The schema's current revision (None before the first migration)."""
        return migrate.current_revision(self.engine)

    def check(self) -> list[str]:
        """What an integrity check finds wrong (SQLite ``PRAGMA quick_check``; PostgreSQL: that
        it answers); empty when nothing is. Raises StoreError when it cannot even run."""
        try:
            with read_transaction(self.engine) as conn:
                if conn.dialect.name != "sqlite":
                    conn.execute(sa.text("SELECT 1"))
                    return []
                found = [str(row[0]) for row in conn.exec_driver_sql("PRAGMA quick_check")]
        except exc.SQLAlchemyError as error:
            detail = str(getattr(error, "orig", None) or error).strip()
            if any(word in detail.lower() for word in _DAMAGED):
                return [detail.splitlines()[0]]  # too damaged for the check itself to finish
            raise store_error(error, self.url, "checking the database") from error
        return [] if found == ["ok"] else found

    def upgrade(self) -> str | None:
        """Migrate the schema to head (a no-op when there); the revision afterwards."""
        migrate.ensure_schema(self.engine)
        return migrate.head_revision()

    def record_run(self, rows: RunRows, events: Sequence[EvidenceEvent]) -> bool:
        """Record a whole run and apply its evidence, in one transaction; whether it was new.

        Idempotent on ``run_id``: a run already stored was stored with its events in the same
        transaction, so a replay writes nothing at all (whatever the order of its events).
        Each event is also unique on its key (see :func:`~apex.store.apply.event_key`).
        """
        return self.record_runs([(rows, events)])[0]

    def record_runs(self, runs: Sequence[tuple[RunRows, Sequence[EvidenceEvent]]]) -> list[bool]:
        """:meth:`record_run` for several runs in one transaction (the aggregates they share are
        read and written once); whether each was new. All are recorded, or none."""
        if not runs:
            return []
        first: dict[str, int] = {}  # a run given twice is new at most once: the first time
        for index, (rows, _) in enumerate(runs):
            first.setdefault(rows.run.run_id, index)
        batch = [runs[index] for index in first.values()]
        what = f"recording run {next(iter(first))}" if len(first) == 1 else "recording runs"
        try:
            with write_transaction(self.engine) as conn:
                statement = insert_ignore(conn, RUNS, ["run_id"]).returning(RUNS.c.run_id)
                values = [row_values(rows.run) for rows, _ in batch]
                stored = set(conn.execute(statement, values).scalars())
                fresh = [(rows, events) for rows, events in batch if rows.run.run_id in stored]
                for table, children in (
                    (CALLS, [row for rows, _ in fresh for row in rows.calls]),
                    (CANDIDATES, [row for rows, _ in fresh for row in rows.candidates]),
                    (CRITIQUES, [row for rows, _ in fresh for row in rows.critiques]),
                ):
                    if children:
                        conn.execute(sa.insert(table), [row_values(row) for row in children])
                by_run = [(rows.run.run_id, events) for rows, events in fresh]
                apply_run_events(conn, by_run, self.params)
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.url, what) from error
        return [
            first[rows.run.run_id] == index and rows.run.run_id in stored
            for index, (rows, _) in enumerate(runs)
        ]

    def apply(self, events: Iterable[EvidenceEvent], *, run_id: str | None = None) -> None:
        """Store events and fold them into their aggregates, in order, in one transaction.

        Events already stored (same key; see :func:`~apex.store.apply.event_key`) are skipped
        with their aggregate update, so replaying a batch never counts it twice.
        """
        self.apply_count(events, run_id=run_id)

    def apply_count(
        self,
        events: Iterable[EvidenceEvent],
        *,
        run_id: str | None = None,
        folded: Mapping[AggKey, ModelAggregate] | None = None,
    ) -> int:
        """:meth:`apply`, returning how many events were new (``folded``: see
        :func:`~apex.store.apply.apply_events`)."""
        batch = list(events)
        if not batch:
            return 0
        try:
            with write_transaction(self.engine) as conn:
                return apply_events(conn, batch, self.params, run_id=run_id, folded=folded)
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.url, "applying evidence") from error

    def get(self, model: str, category: str, role: Role = "panel") -> ModelAggregate:
        """The aggregate of ``model`` in ``role`` and ``category`` (empty without evidence)."""
        key: AggKey = (model, role, category)
        return self.get_keys([key])[key]

    def get_keys(self, keys: Iterable[AggKey]) -> dict[AggKey, ModelAggregate]:
        """Aggregates by ``(model, role, category)`` in one keyed query; empty where missing.

        A panel's weights need each model's category and global (``"*"``) aggregates:
        :func:`~apex.store.aggregate.record_keys` lists them, read here at once.
        """
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        try:
            with read_transaction(self.engine) as conn:
                found = {
                    (r.model, r.role, r.category): r.stats
                    for query, params in keyed_aggregates(wanted)
                    for r in conn.execute(query, params)
                }
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.url, "reading aggregates") from error
        return {
            key: ModelAggregate.model_validate(found[key])
            if key in found
            else ModelAggregate.empty(*key)
            for key in wanted
        }

    def updated_at(self, models: Sequence[str], role: Role = "panel") -> dict[str, datetime]:
        """When each model's global record in ``role`` last changed (naive UTC; absent: never)."""
        if not models:
            return {}
        query = sa.select(AGGREGATES.c.model, AGGREGATES.c.updated_at).where(
            AGGREGATES.c.category == GLOBAL_CATEGORY,
            AGGREGATES.c.role == role,
            AGGREGATES.c.model.in_(list(models)),
        )
        try:
            with read_transaction(self.engine) as conn:
                return {r.model: r.updated_at for r in conn.execute(query)}
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.url, "reading aggregates") from error

    def run(self, run_id: str) -> StoredRun | None:
        """The stored run ``run_id`` (models, labels, extracted answers...), or None."""
        try:
            with read_transaction(self.engine) as conn:
                return load_run(conn, run_id)
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.url, f"reading run {run_id}") from error

    def leaderboard(
        self, category: str | None = None, role: Role | None = None
    ) -> list[LeaderboardRow]:
        """Per-(model, role) rows for ``category`` (None: every category), best first."""
        try:
            with read_transaction(self.engine) as conn:
                return leaderboard_rows(conn, category, role)
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.url, "reading the leaderboard") from error

    def prune(self, older_than: timedelta) -> PruneReport:
        """Drop raw rows older than ``older_than`` (aggregates kept), then vacuum."""
        return prune(self.engine, older_than)
