"""The goals' checkpointer and its upkeep: one small adapter over LangGraph's savers.

Everything here is written against the LangGraph versions pinned in ``pyproject.toml``
(langgraph 1.x, langgraph-checkpoint 4.x, langgraph-checkpoint-sqlite 3.x,
langgraph-checkpoint-postgres 3.x); the only SQL against LangGraph's own tables is the SQLite
compaction below, because that saver has no ``prune``.

The serializer's allow-list is derived from the state's types (:func:`checkpointed_types`), so a
type added to the state is rebuilt as itself on resume rather than coming back as a plain dict.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import sqlite3
import types
import typing
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from pydantic import BaseModel
from sqlalchemy.engine import make_url

from apex.errors import StoreError
from apex.goals.loop import GoalLoopState
from apex.graph.builder import FusionState
from apex.graph.nodes import CritiqueTask, GenerateTask
from apex.graph.types import JudgeInput
from apex.store import EvidenceStore
from apex.store.engine import DEFAULT_BUSY_TIMEOUT_S

_PG_SETUP_LOCK = 0x41504543  # "APEC": the advisory lock held while the saver migrates
_PG_SET_UP: set[str] = set()
"""Databases whose checkpoint tables this process has set up (or found) already."""

STATE_ROOTS: tuple[type, ...] = (GoalLoopState, FusionState, GenerateTask, CritiqueTask, JudgeInput)
"""What a goal's checkpoints hold: the two graphs' states and the payloads ``Send`` carries to
the fusion graph's task nodes (each node's input schema)."""


def _driver_errors() -> tuple[type[Exception], ...]:
    try:
        import psycopg
    except ImportError:  # the postgres extra is not installed: only SQLite can fail
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


CHECKPOINT_ERRORS = _driver_errors()
"""Database driver errors a saver may raise (SQLite always, psycopg with the postgres extra)."""


def _hints(cls: type) -> Iterable[Any]:
    """The field annotations of a pydantic model, dataclass or TypedDict (else none)."""
    if issubclass(cls, BaseModel):
        return [f.annotation for f in cls.model_fields.values()]
    if dataclasses.is_dataclass(cls) or typing.is_typeddict(cls):
        return typing.get_type_hints(cls).values()
    return []


def _walk(annotation: Any, seen: set[type]) -> Iterator[type]:
    """Classes the serializer rebuilds by name, reachable from ``annotation``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return
    if origin is typing.Annotated:  # e.g. a reducer: only the first argument is a type
        yield from _walk(typing.get_args(annotation)[0], seen)
        return
    if origin is not None or isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _walk(arg, seen)
        return
    if not isinstance(annotation, type) or annotation in seen:
        return
    seen.add(annotation)
    # Pydantic models, dataclasses and enums go into a checkpoint as (module, name, data);
    # TypedDicts are plain dicts, and builtins are msgpack's own.
    if (
        issubclass(annotation, (BaseModel, enum.Enum))
        or dataclasses.is_dataclass(annotation)
        or (issubclass(annotation, tuple) and hasattr(annotation, "_fields"))
    ):
        yield annotation
    for hint in _hints(annotation):
        yield from _walk(hint, seen)


@functools.cache
def checkpointed_types(roots: tuple[type, ...] = STATE_ROOTS) -> tuple[type, ...]:
    """Every class a checkpoint of ``roots`` may hold that the serializer must allow by name.

    Walks field annotations recursively (pydantic models, dataclasses, TypedDicts, through
    lists, dicts, unions and ``Annotated``); sorted by module and name.
    """
    seen: set[type] = set()
    found = {cls for root in roots for cls in _walk(root, seen)}
    return tuple(sorted(found, key=lambda c: (c.__module__, c.__name__)))


def serializer() -> JsonPlusSerializer:
    """The checkpoint serializer, allowed to rebuild exactly the state's own types."""
    allowed = [(cls.__module__, cls.__name__) for cls in checkpointed_types()]
    return JsonPlusSerializer(allowed_msgpack_modules=allowed)


@asynccontextmanager
async def open_checkpointer(store: EvidenceStore) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """LangGraph's checkpointer on the store's own database (SQLite file or PostgreSQL)."""
    url = make_url(store.url)
    if url.get_backend_name() == "sqlite":
        import aiosqlite

        # autocommit: each of the saver's statements commits itself, so a cycle cancelled
        # between a write and its commit leaves no transaction holding SQLite's write lock
        async with aiosqlite.connect(url.database or ":memory:", isolation_level=None) as conn:
            await conn.execute(f"PRAGMA busy_timeout = {int(DEFAULT_BUSY_TIMEOUT_S * 1000)}")
            saver = AsyncSqliteSaver(conn, serde=serializer())
            await saver.setup()
            yield saver
        return
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError as error:
        raise StoreError(
            "goals on PostgreSQL need langgraph-checkpoint-postgres: "
            "pip install 'apex-fusion[postgres]'"
        ) from error
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    async with AsyncPostgresSaver.from_conn_string(conninfo, serde=serializer()) as pg_saver:
        if conninfo not in _PG_SET_UP:
            # Goals starting at once on a fresh database would race through the saver's
            # migrations (CREATE TABLE IF NOT EXISTS is not atomic): one at a time, then none.
            await _pg_setup(pg_saver)
            _PG_SET_UP.add(conninfo)
        yield pg_saver


async def _pg_setup(saver: Any) -> None:
    """The PostgreSQL saver's ``setup()`` under a session advisory lock on its connection."""
    import psycopg

    conn = saver.conn
    if not isinstance(conn, psycopg.AsyncConnection):  # a pool: its setup takes a connection
        await saver.setup()
        return
    # Polled rather than waited for: the saver creates indexes CONCURRENTLY, which waits for
    # every open transaction, a blocked pg_advisory_lock call included (a deadlock).
    while True:
        cursor = await conn.execute("SELECT pg_try_advisory_lock(%s) AS taken", (_PG_SETUP_LOCK,))
        row = await cursor.fetchone()  # the saver's connection returns rows as dicts
        if isinstance(row, dict) and row.get("taken"):
            break
        await asyncio.sleep(0.05)
    try:
        await saver.setup()
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_PG_SETUP_LOCK,))


async def compact(saver: BaseCheckpointSaver[str], goal_id: str) -> None:
    """Drop the goal's checkpoints but the latest top-level one, at a cycle boundary.

    Resuming needs only the latest checkpoint, so a goal's checkpoints stay the same size
    however long it runs. On PostgreSQL this is the saver's own ``keep_latest`` prune: it keeps
    the latest checkpoint of each namespace with its pending writes and blobs, and deletes each
    finished subgraph call's namespace (the fusion cycle's) with the root checkpoint it started
    from. SQLite's saver has no prune, so :func:`_sqlite_keep_latest` does the same there; any
    other saver must implement ``aprune`` (the base class raises NotImplementedError). Raises
    one of :data:`CHECKPOINT_ERRORS` when the database fails.
    """
    if isinstance(saver, AsyncSqliteSaver):
        await _sqlite_keep_latest(saver, goal_id)
    else:
        await saver.aprune([goal_id], strategy="keep_latest")


# langgraph-checkpoint-sqlite 3.x keeps a thread in two tables, `checkpoints` and `writes`, both
# keyed by (thread_id, checkpoint_ns, checkpoint_id), with channel values inline (no blobs); its
# latest checkpoint is the greatest id. At a cycle boundary every subgraph namespace is a
# finished call, so only the root's latest checkpoint (and its writes) is kept; the parent link
# to a deleted checkpoint is cleared, as PostgreSQL's prune does. Revisit on a major upgrade.
_NOT_LATEST = (
    "thread_id = :t AND NOT (checkpoint_ns = '' AND checkpoint_id = "
    "(SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = :t AND checkpoint_ns = ''))"
)
_SQLITE_KEEP_LATEST = (
    f"DELETE FROM writes WHERE {_NOT_LATEST}",  # noqa: S608 - fixed text, no input in it
    f"DELETE FROM checkpoints WHERE {_NOT_LATEST}",  # noqa: S608 - same
    "UPDATE checkpoints SET parent_checkpoint_id = NULL WHERE thread_id = :t",
)


async def _sqlite_keep_latest(saver: AsyncSqliteSaver, goal_id: str) -> None:
    """SQLite's keep_latest, in one transaction on the saver's own connection and lock."""
    async with saver.lock:
        await saver.conn.execute("BEGIN IMMEDIATE")  # the connection commits each statement
        try:
            for statement in _SQLITE_KEEP_LATEST:
                await saver.conn.execute(statement, {"t": goal_id})
        except BaseException:
            await saver.conn.rollback()
            raise
        await saver.conn.commit()
