"""Worker tests reuse the store's backends; ``backend`` runs a test on SQLite with one worker
and on PostgreSQL with three."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.store.conftest import db_url, pg_url, sqlite_url

__all__ = ["Backend", "backend", "db_url", "pg_url", "sqlite_url"]


@dataclass(frozen=True)
class Backend:
    """A database and how many workers serve it."""

    url: str
    workers: int

    @property
    def postgres(self) -> bool:
        """Whether it is PostgreSQL."""
        return self.url.startswith("postgresql")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Backend:
    """SQLite with its one worker, or PostgreSQL with three, each on a fresh database."""
    if request.param == "sqlite":
        return Backend(request.getfixturevalue("sqlite_url"), 1)
    return Backend(request.getfixturevalue("pg_url"), 3)
