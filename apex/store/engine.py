"""Where the store lives and how it is connected: URL resolution, engines, transactions, errors.

The URL comes from an explicit argument, else ``APEX_DB``, else the workflow's ``db`` key, else
``sqlite:///$APEX_HOME/apex.db`` (``APEX_HOME`` defaults to ``~/.apex``). A bare path is taken as
an SQLite file. SQLite runs in WAL mode with a busy timeout, and every write transaction starts
with ``BEGIN IMMEDIATE`` so that several processes can write at once without losing updates.
Every SQLAlchemy or driver error is mapped to :class:`~apex.errors.StoreError` in
:func:`store_error`, with one line naming the database (password masked) and what to do.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from apex.errors import StoreError

APEX_DB_ENV = "APEX_DB"
"""Environment variable holding the store's database URL."""
APEX_HOME_ENV = "APEX_HOME"
"""Environment variable naming APEX's state directory."""
DEFAULT_HOME = "~/.apex"
"""APEX's state directory when ``APEX_HOME`` is unset."""
DEFAULT_DB_FILE = "apex.db"
"""The default SQLite file inside ``APEX_HOME``."""
DEFAULT_BUSY_TIMEOUT_S = 30.0
"""How long an SQLite writer waits for another process's lock before giving up."""

_WRITE = "apex_write"
_USERINFO = re.compile(r"(://[^:/@]*:)[^@]*@")


def apex_home() -> Path:
    """APEX's state directory (created if missing); a StoreError when it cannot be."""
    home = Path(os.environ.get(APEX_HOME_ENV) or DEFAULT_HOME).expanduser()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(
            f"APEX_HOME {home}: cannot create it ({error.strerror or error}); set APEX_HOME to "
            "a writable directory, or give the database with --db or APEX_DB"
        ) from None
    return home


def resolve_db_url(explicit: str | None = None, workflow_db: str | None = None) -> str:
    """The database URL: ``explicit``, else ``APEX_DB``, else ``workflow_db``, else the default.

    A value without ``://`` is a path to an SQLite file.
    """
    value = explicit or os.environ.get(APEX_DB_ENV) or workflow_db
    if not value:
        return f"sqlite:///{apex_home() / DEFAULT_DB_FILE}"
    if "://" not in value:
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    return value


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by ``***``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return _USERINFO.sub(r"\1***@", url)


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise StoreError(
            f"{mask_url(url)}: not a database URL; use sqlite:///path/to/apex.db or "
            "postgresql+psycopg://user@host:5432/dbname"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (persistent) unless it is already, retrying while it is locked.

    SQLite does not call the busy handler while changing the journal mode, so several processes
    opening a new file at once would otherwise fail at once with "database is locked".
    """
    deadline = time.monotonic() + DEFAULT_BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0, delay))
            delay = min(delay * 2, 0.2)


def _sqlite_events(engine: Engine, *, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred-only).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(DEFAULT_BUSY_TIMEOUT_S * 1000)}")
            if not read_only:  # a read-only connection can neither change nor need the mode
                enable_wal(cursor)
                cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL (None for other databases, memory and ``file:`` URIs)."""
    parsed = _parse(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else Path(database).expanduser()


def _read_only_connect(path: Path) -> Any:
    """Open ``path`` for reading only: ``mode=ro``, else (a WAL file on a read-only file system,
    whose shared-memory file cannot be created) ``immutable=1``."""

    def connect() -> sqlite3.Connection:
        uri = path.resolve().as_uri()
        conn = sqlite3.connect(
            f"{uri}?mode=ro", timeout=DEFAULT_BUSY_TIMEOUT_S, uri=True, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA schema_version").fetchone()  # WAL needs its -shm file now
        except sqlite3.OperationalError as error:
            conn.close()
            if "unable to open" not in str(error) or not path.is_file():
                raise
            return sqlite3.connect(
                f"{uri}?immutable=1", timeout=DEFAULT_BUSY_TIMEOUT_S, uri=True,
                check_same_thread=False,
            )  # fmt: skip
        return conn

    return connect


def create_store_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and their directory created.

    ``read_only`` opens an existing SQLite file for reading only (for commands that only read:
    they then work on a read-only file system too); it changes nothing for other databases.
    """
    parsed = _parse(url)
    kwargs: dict[str, Any] = {}
    path = sqlite_file(url) if read_only else None
    if path is not None:
        kwargs["creator"] = _read_only_connect(path)
    elif parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreError(
                    f"{mask_url(parsed)}: cannot create its directory ({error.strerror}); "
                    "choose a writable location for the database"
                ) from error
        kwargs["connect_args"] = {"timeout": DEFAULT_BUSY_TIMEOUT_S}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise StoreError(
            f"{mask_url(parsed)}: unsupported database ({type(error).__name__}: "
            f"{_first_line(error)}); use sqlite:/// or postgresql+psycopg:// "
            "(pip install 'apex-fusion[postgres]')"
        ) from error
    if parsed.get_backend_name() == "sqlite":
        _sqlite_events(engine, read_only=path is not None)
    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on exit."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a read transaction (a consistent snapshot), closed on exit."""
    with engine.connect() as conn, conn.begin():
        yield conn


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


DAMAGED_FIX = (
    "restore it from a backup (or move it aside: the next run starts a new one), then run "
    "`apex db recover` for the runs spooled meanwhile"
)
"""What to do about a damaged SQLite file."""
DAMAGED_HINT = f"the database file is damaged; run `apex db check`, then {DAMAGED_FIX}"
"""What a store error says when the file turns out damaged."""

_HINTS: tuple[tuple[str, str], ...] = (
    ("no such table", "the schema is missing or old; run `apex db upgrade`"),
    ("undefinedtable", "the schema is missing or old; run `apex db upgrade`"),
    (
        "readonly database",
        "the database file is read-only; make it writable or choose another "
        "location for the database",
    ),
    (
        "unable to open database",
        "cannot open the database file; check that its directory exists "
        "and is writable, or choose another location for the database",
    ),
    ("file is not a database", "not an SQLite database; give the URL of an APEX store"),
    ("malformed", DAMAGED_HINT),
    ("database corrupt", DAMAGED_HINT),
    (
        "database is locked",
        "locked by another process for longer than the busy timeout; retry, "
        "or check for a stuck writer",
    ),
    ("disk i/o error", "disk I/O error; check the disk and the file's permissions"),
    ("database or disk is full", "the disk is full; free space or run `apex db prune`"),
    ("password authentication failed", "authentication failed; check the user and password"),
    ("no password supplied", "the server wants a password; put it in the URL or ~/.pgpass"),
    (
        "does not exist",
        "the server refused it: the database or role does not exist; create it or fix the URL",
    ),
    (
        "connection refused",
        "cannot connect to the server; is PostgreSQL running and reachable at that host and port?",
    ),
    ("could not translate host name", "unknown host; fix the host in the URL"),
    ("timeout expired", "the server did not answer in time; is it reachable?"),
    ("connection failed", "cannot connect to the server; is PostgreSQL running and reachable?"),
)


def _password(url: str) -> str | None:
    try:
        return make_url(url).password
    except exc.ArgumentError:
        return None


def store_error(error: BaseException, url: str | URL, doing: str = "") -> StoreError:
    """Map a SQLAlchemy or driver error to a one-line :class:`StoreError` naming the database."""
    if isinstance(error, StoreError):
        return error
    detail = _first_line(error)
    password = url.password if isinstance(url, URL) else _password(url)
    if password:
        detail = detail.replace(str(password), "***")
    haystack = f"{type(getattr(error, 'orig', None)).__name__} {detail}".lower()
    what = f" while {doing}" if doing else ""
    for needle, hint in _HINTS:
        if needle in haystack:
            return StoreError(f"{mask_url(url)}{what}: {hint} ({detail})")
    return StoreError(f"{mask_url(url)}{what}: {type(error).__name__}: {detail}")
