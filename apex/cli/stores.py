"""Which store a command opens, and whether it may create it.

The default store (``$APEX_HOME/apex.db``) is created on first use, so a new user's first
``apex fuse`` just works. A store named explicitly (``--db``, ``APEX_DB``, a workflow's ``db``)
that does not exist is a typo more often than a wish: only commands that write (``fuse``,
``goal start``, ``db upgrade``...) create it, and only when its folder exists; commands that only
read say that no store is there, and open an existing SQLite file for reading only.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from apex.errors import ConfigError

if TYPE_CHECKING:
    from apex.store import EvidenceStore


def _named(db: str | None, workflow_db: str | None) -> tuple[str, str] | None:
    """The explicitly named store and who named it, or None for the default."""
    from apex.store.engine import APEX_DB_ENV

    if db:
        return db, "--db"
    if os.environ.get(APEX_DB_ENV):
        return os.environ[APEX_DB_ENV], APEX_DB_ENV
    if workflow_db:
        return workflow_db, "the workflow's db"
    return None


def check_named_store(db: str | None, workflow_db: str | None, *, write: bool) -> None:
    """Refuse a named SQLite store that does not exist (read), or whose folder does not (write)."""
    from apex.store.engine import resolve_db_url, sqlite_file

    named = _named(db, workflow_db)
    if named is None:
        return
    value, source = named
    path = sqlite_file(resolve_db_url(value))
    if path is None or path.exists():
        return
    if not write:
        raise ConfigError(
            f"{source} {value}: no store is there; check the path, or create one with a command "
            "that writes (apex fuse, apex db upgrade)"
        )
    if not path.parent.is_dir():
        raise ConfigError(
            f"{source} {value}: folder {path.parent} does not exist; create it or fix the path"
        )


def open_store(
    db: str | None,
    workflow_db: str | None = None,
    *,
    write: bool,
    migrate: bool = True,
    read_only: bool = False,
) -> EvidenceStore:
    """The store a command uses (see the module docstring); a ConfigError when it is not there.

    ``read_only`` opens an existing SQLite file for reading only (commands that never write).
    """
    from apex.store import EvidenceStore

    check_named_store(db, workflow_db, write=write)
    return EvidenceStore(db, workflow_db=workflow_db, migrate=migrate, read_only=read_only)
