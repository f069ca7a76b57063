"""Goal tests reuse the store's backends: SQLite and (where reachable) PostgreSQL."""

from tests.store.conftest import db_url, pg_url, sqlite_url

__all__ = ["db_url", "pg_url", "sqlite_url"]
