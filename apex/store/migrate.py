"""Schema migrations: Alembic, configured in code, run under a lock in one transaction.

The scripts live in the repository's top-level ``store/`` folder, shipped in the wheel as
``apex/_data/store``. A store migrates itself to head on first use; ``apex db upgrade`` does the
same explicitly. Several processes may open a new database at once: each takes the migration
lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL transaction-level advisory lock) and Alembic reads
the current revision under it, so exactly one of them creates the tables.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import exc, text
from sqlalchemy.engine import Connection, Engine

from apex.errors import StoreError
from apex.store.engine import mask_url, read_transaction, store_error, write_transaction

_PG_MIGRATION_LOCK = 0x41504558  # "APEX": the advisory lock key taken while migrating


def migrations_dir() -> Path:
    """Where the Alembic scripts live: inside the wheel, or the source tree when editable."""
    packaged = Path(__file__).resolve().parent.parent / "_data" / "store"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "store"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the store's scripts, bound to ``connection`` when given."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    """The newest revision the installed scripts know."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the scripts always have a head
        raise StoreError(f"{migrations_dir()}: no migration scripts found")
    return head


def revisions() -> list[str]:
    """Every known revision, oldest first."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return [s.revision for s in reversed(list(scripts.walk_revisions()))]


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def current_revision(engine: Engine) -> str | None:
    """The database's revision, None when it has no schema yet."""
    try:
        with read_transaction(engine) as conn:
            return _current(conn)
    except exc.SQLAlchemyError as error:
        raise store_error(error, engine.url, "reading the schema revision") from error


def _check_known(revision: str | None, engine: Engine) -> None:
    if revision is not None and revision not in revisions():
        raise StoreError(
            f"{mask_url(engine.url)}: schema revision {revision} is newer than this APEX knows "
            f"(head {head_revision()}); upgrade APEX"
        )


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Migrate the database to ``revision`` (default head) under the lock; the new revision."""
    try:
        with write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            _check_known(_current(conn), engine)
            command.upgrade(alembic_config(conn), revision)
            return _current(conn)
    except exc.SQLAlchemyError as error:
        raise store_error(error, engine.url, "migrating the schema") from error


def ensure_schema(engine: Engine) -> None:
    """Migrate to head unless already there (one cheap read when it is)."""
    current = current_revision(engine)
    if current == head_revision():
        return
    _check_known(current, engine)
    upgrade(engine)
