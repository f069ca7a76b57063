"""Applying evidence in SQL: insert each event once, fold new ones into locked aggregates.

Inside the caller's write transaction:

1. events are inserted with ``ON CONFLICT (key) DO NOTHING ... RETURNING key``: an event whose
   key is already stored (a replay after a crash) is skipped, and so is its aggregate update;
2. the aggregates the new events touch (:func:`~apex.store.aggregate.aggregate_keys`: the
   category's and the model's global ``"*"``, in the event's role) are created if missing, then
   read ``FOR UPDATE`` in key order (SQLite: the transaction's ``BEGIN IMMEDIATE`` lock
   already serializes writers);
3. the events are folded with :func:`~apex.store.aggregate.apply_event`, in the caller's
   order, and the rows written back.

The aggregates table keeps the dumped :class:`ModelAggregate` in ``stats`` (so its fields change
without a migration) and lifetime counts per event kind and failure kind in ``counts``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from apex.store.aggregate import (
    DEFAULT_FOLD,
    AggKey,
    EvidenceEvent,
    FoldParams,
    ModelAggregate,
    aggregate_keys,
    apply_event,
)
from apex.store.tables import AGGREGATES, EVIDENCE, utcnow

ANON_PREFIX = "anon/"
"""Keys of events with neither a key nor a run: random, so never a replay of a stored one."""
CHUNK = 500
"""Rows per multi-row INSERT (well under SQLite's bound-parameter limit)."""


def event_key(event: EvidenceEvent, run_id: str | None, index: int, batch: str = "") -> str:
    """The event's unique key: its own ``key`` when it has one, else derived from the run.

    Derived keys are ``{run_id}/{index}/{model}/{kind}`` (``{role}:{kind}`` outside the panel),
    stable when the same run's events are replayed in the same order; events with neither a key
    nor a run get a random key (never recognized as replays): ``anon/{batch}/{index}``, where
    ``batch`` is random per call (one random draw per batch, not per event).
    """
    own = event.__dict__.get("key")  # a subclass may carry its own key field
    if isinstance(own, str) and own:
        return own
    if run_id is None:
        return f"{ANON_PREFIX}{batch or uuid.uuid4().hex}/{index}"
    kind = event.kind if event.role == "panel" else f"{event.role}:{event.kind}"
    return f"{run_id}/{index}/{event.model}/{kind}"


def insert_ignore(conn: Connection, table: sa.Table, keys: Sequence[str]) -> sa.Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING`` for this connection's dialect.

    Execute it with a list of rows: one statement, compiled once and cached, sent as an
    executemany (with ``RETURNING``, SQLAlchemy batches the rows into multi-row inserts).
    """
    name = conn.dialect.name
    if name not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"the evidence store does not support {name}")
    return _insert_ignore(name, table, tuple(keys))


@functools.lru_cache(maxsize=32)
def _insert_ignore(dialect: str, table: sa.Table, keys: tuple[str, ...]) -> sa.Insert:
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))


def event_counts(event: EvidenceEvent) -> list[str]:
    """The lifetime counters an event increments: its kind, and ``failure:KIND`` for failures."""
    names: list[str] = [event.kind]
    if event.kind == "failure" and event.failure_kind is not None:
        names.append(f"failure:{event.failure_kind}")
    return names


_Keyed = tuple[str | None, EvidenceEvent]
"""An event with the run it belongs to (None: none)."""
KEYS_PER_QUERY = 200
"""Aggregate keys per keyed lookup."""


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@functools.lru_cache(maxsize=2 * KEYS_PER_QUERY)
def _keyed_select(n: int, stats: bool) -> sa.Select[Any]:
    """The select of ``n`` aggregate rows by key, built once per ``n`` (binds m0, r0, c0...)."""
    columns = (AGGREGATES.c.model, AGGREGATES.c.role, AGGREGATES.c.category)
    values = (AGGREGATES.c.stats, AGGREGATES.c.counts) if stats else (AGGREGATES.c.counts,)
    return (
        sa.select(*columns, *values)
        .where(
            sa.or_(
                *(
                    sa.and_(
                        AGGREGATES.c.model == sa.bindparam(f"m{i}"),
                        AGGREGATES.c.role == sa.bindparam(f"r{i}"),
                        AGGREGATES.c.category == sa.bindparam(f"c{i}"),
                    )
                    for i in range(n)
                )
            )
        )
        .order_by(*columns)
    )


def keyed_aggregates(
    keys: Sequence[AggKey], *, stats: bool = True
) -> Iterable[tuple[sa.Select[Any], dict[str, str]]]:
    """Selects (with their parameters) of the aggregate rows with these keys, in key order:
    their key columns, ``stats`` (unless ``stats`` is False) and ``counts``.

    Written as ``(model = ? AND role = ? AND category = ?) OR ...`` so that SQLite and
    PostgreSQL both use the primary key (SQLite scans the whole table for a row-value ``IN``).
    """
    for chunk in _chunks(keys, KEYS_PER_QUERY):
        params: dict[str, str] = {}
        for i, (model, role, category) in enumerate(chunk):
            params[f"m{i}"], params[f"r{i}"], params[f"c{i}"] = model, role, category
        yield _keyed_select(len(chunk), stats), params


def _insert_new(conn: Connection, keyed: Mapping[str, _Keyed], now: datetime) -> set[str]:
    if all(run is None and key.startswith(ANON_PREFIX) for key, (run, _) in keyed.items()):
        _bulk_insert(conn, keyed, now)  # nothing to skip
        return set(keyed)
    rows = [
        {
            "key": key,
            "run_id": run_id,
            "created_at": now,
            "model": event.model,
            "role": event.role,
            "category": event.category,
            "kind": event.kind,
            "data": event.model_dump(exclude_defaults=True),
        }
        for key, (run_id, event) in sorted(keyed.items())  # one lock order for every writer
    ]
    statement = insert_ignore(conn, EVIDENCE, ["key"]).returning(EVIDENCE.c.key)
    return set(conn.execute(statement, rows).scalars())


_EVIDENCE_COLUMNS = ("key", "created_at", "model", "role", "category", "kind", "data")


def _bulk_insert(conn: Connection, keyed: Mapping[str, _Keyed], now: datetime) -> None:
    """Insert events without a run straight through the driver's executemany (a replay writes
    tens of thousands at once; SQLAlchemy's per-row parameter processing would dominate):
    pydantic writes each event's JSON, and the one time stamp is formatted once."""
    sqlite_dialect = conn.dialect.name == "sqlite"
    mark = "?" if sqlite_dialect else "%s"
    names = ", ".join(_EVIDENCE_COLUMNS)
    marks = ", ".join([mark] * len(_EVIDENCE_COLUMNS))
    statement = f"INSERT INTO evidence ({names}) VALUES ({marks})"  # noqa: S608 - fixed text
    stamp = now.strftime(_SQLITE_STAMP) if sqlite_dialect else now
    values = [
        (
            key,
            stamp,
            event.model,
            event.role,
            event.category,
            event.kind,
            event.model_dump_json(exclude_defaults=True),
        )
        for key, (_, event) in keyed.items()
    ]
    conn.exec_driver_sql(statement, values)


_SQLITE_STAMP = "%Y-%m-%d %H:%M:%S.%f"
"""How SQLAlchemy stores a DateTime in SQLite."""


def _lock_aggregates(
    conn: Connection, targets: list[AggKey], now: datetime, *, stats: bool
) -> dict[AggKey, tuple[dict[str, Any] | None, dict[str, int]]]:
    """Create missing aggregate rows, then read all of them under a row lock: each one's
    counts and, with ``stats``, its stored stats (a dumped :class:`ModelAggregate`)."""
    missing = [
        {
            "model": model,
            "role": role,
            "category": category,
            "stats": ModelAggregate.empty(model, role, category).model_dump(mode="json"),
            "counts": {},
            "events": 0,
            "updated_at": now,
        }
        for model, role, category in targets
    ]
    if missing:
        conn.execute(insert_ignore(conn, AGGREGATES, ["model", "role", "category"]), missing)
    return {
        (row.model, row.role, row.category): (
            row.stats if stats else None,
            dict(row.counts or {}),
        )
        for query, params in keyed_aggregates(targets, stats=stats)
        for row in conn.execute(query.with_for_update(), params)
    }


def apply_events(
    conn: Connection,
    events: Iterable[EvidenceEvent],
    params: FoldParams | None = None,
    *,
    run_id: str | None = None,
    now: datetime | None = None,
    folded: Mapping[AggKey, ModelAggregate] | None = None,
) -> int:
    """Store new events and fold them into their aggregates; how many were new.

    ``folded`` holds the aggregates these events were already folded into, in memory, from the
    stored ones (a write-behind buffer, :class:`~apex.store.buffered.WriteBehind`): when every
    event is new, they are written as they are instead of folded a second time.
    """
    return apply_run_events(conn, [(run_id, events)], params, now=now, folded=folded)


def apply_run_events(
    conn: Connection,
    runs: Iterable[tuple[str | None, Iterable[EvidenceEvent]]],
    params: FoldParams | None = None,
    *,
    now: datetime | None = None,
    folded: Mapping[AggKey, ModelAggregate] | None = None,
) -> int:
    """:func:`apply_events` for several runs' events at once, each ``(run_id, events)`` keyed
    by its own run: the aggregates they share are locked, folded and written once."""
    stamp = now or utcnow()
    keyed: dict[str, _Keyed] = {}
    for run_id, events in runs:
        batch = uuid.uuid4().hex if run_id is None else ""
        for index, event in enumerate(events):
            keyed.setdefault(event_key(event, run_id, index, batch), (run_id, event))
    if not keyed:
        return 0
    inserted = _insert_new(conn, keyed, stamp)
    fresh = [event for key, (_, event) in keyed.items() if key in inserted]  # caller's order
    if not fresh:
        return 0
    targets = sorted({agg for event in fresh for agg in aggregate_keys(event)})
    precomputed = folded is not None and len(fresh) == len(keyed)
    locked = _lock_aggregates(conn, targets, stamp, stats=not precomputed)
    counts = {key: tally for key, (_, tally) in locked.items()}
    for event in fresh:
        names = event_counts(event)
        for target in aggregate_keys(event):
            tally = counts[target]
            for name in names:
                tally[name] = tally.get(name, 0) + 1
    if precomputed and folded is not None:
        aggs = {key: folded[key] for key in targets}
    else:
        aggs = {key: ModelAggregate.model_validate(stats) for key, (stats, _) in locked.items()}
        fold = params or DEFAULT_FOLD
        for event in fresh:
            for target in aggregate_keys(event):
                aggs[target] = apply_event(aggs[target], event, fold)
    _write_aggregates(conn, aggs, counts, stamp)
    return len(fresh)


def _write_aggregates(
    conn: Connection,
    aggs: Mapping[AggKey, ModelAggregate],
    counts: Mapping[AggKey, dict[str, int]],
    stamp: datetime,
) -> None:
    conn.execute(
        sa.update(AGGREGATES)
        .where(
            AGGREGATES.c.model == sa.bindparam("k_model"),
            AGGREGATES.c.role == sa.bindparam("k_role"),
            AGGREGATES.c.category == sa.bindparam("k_category"),
        )
        .values(
            stats=sa.bindparam("v_stats"),
            counts=sa.bindparam("v_counts"),
            events=sa.bindparam("v_events"),
            updated_at=sa.bindparam("v_updated_at"),
        ),
        [
            {
                "k_model": model,
                "k_role": role,
                "k_category": category,
                "v_stats": agg.model_dump(mode="json"),
                "v_counts": counts[model, role, category],
                "v_events": agg.events,
                "v_updated_at": stamp,
            }
            for (model, role, category), agg in aggs.items()
        ],
    )
