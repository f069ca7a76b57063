"""The ``workers`` table: each ``apex worker`` with its heartbeat, for ``apex status`` and for
SQLite's rule of one worker per database."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import exc

from apex.errors import WorkerError
from apex.goals.lease import alive
from apex.store import EvidenceStore
from apex.store.engine import read_transaction, store_error, write_transaction
from apex.store.tables import WORKERS, utcnow


@dataclass(frozen=True)
class WorkerInfo:
    """A worker as registered."""

    id: str
    host: str
    pid: int
    concurrency: int
    state: str
    started_at: datetime
    heartbeat_at: datetime
    expires_at: datetime

    def live(self, now: datetime | None = None) -> bool:
        """Whether it counts as running (heartbeat in time, process present on this host)."""
        return alive(self.host, self.pid, self.expires_at, now)

    def describe(self, now: datetime | None = None) -> str:
        """``worker w-1a2b (pid 42 on host h, heartbeat 0.8s ago)``."""
        age = max(((now or utcnow()) - self.heartbeat_at).total_seconds(), 0.0)
        return f"worker {self.id} (pid {self.pid} on {self.host}, heartbeat {age:.1f}s ago)"


def new_worker_id() -> str:
    """A fresh worker id."""
    return f"w-{uuid.uuid4().hex[:8]}"


class WorkerRegistry:
    """Registration and heartbeats of workers on a store's database."""

    def __init__(self, store: EvidenceStore, stale_s: float) -> None:
        self.store = store
        """The store whose database the workers serve."""
        self.ttl = timedelta(seconds=stale_s)
        """How long a registration stays live without a heartbeat."""

    def register(self, worker_id: str, pid: int, concurrency: int, *, exclusive: bool) -> None:
        """Add this worker; with ``exclusive`` (SQLite) refuse while another one is live."""
        now = utcnow()
        row = {
            "id": worker_id,
            "host": socket.gethostname(),
            "pid": pid,
            "concurrency": concurrency,
            "state": "running",
            "started_at": now,
            "heartbeat_at": now,
            "expires_at": now + self.ttl,
        }
        try:
            with write_transaction(self.store.engine) as conn:
                if exclusive:
                    others = [_info(r) for r in conn.execute(sa.select(WORKERS))]
                    live = [w for w in others if w.live(now)]
                    if live:
                        raise WorkerError(
                            f"{live[0].describe(now)} already serves {self.store.masked_url}; "
                            "SQLite takes one worker: use PostgreSQL (--db postgresql+psycopg://"
                            "...) to run more"
                        )
                    conn.execute(sa.delete(WORKERS))  # dead registrations
                conn.execute(sa.insert(WORKERS), [row])
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, "registering the worker") from error

    def beat(self, worker_id: str, state: str = "running") -> None:
        """Renew the registration (and record ``state``: running or stopping)."""
        now = utcnow()
        query = (
            sa.update(WORKERS)
            .where(WORKERS.c.id == worker_id)
            .values(heartbeat_at=now, expires_at=now + self.ttl, state=state)
        )
        try:
            with write_transaction(self.store.engine) as conn:
                conn.execute(query)
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, "renewing the worker's heartbeat") from error

    def unregister(self, worker_id: str) -> None:
        """Remove the registration (the worker stopped)."""
        try:
            with write_transaction(self.store.engine) as conn:
                conn.execute(sa.delete(WORKERS).where(WORKERS.c.id == worker_id))
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, "unregistering the worker") from error


def workers(store: EvidenceStore) -> list[WorkerInfo]:
    """Every registered worker, live or not, oldest first."""
    try:
        with read_transaction(store.engine) as conn:
            rows = conn.execute(sa.select(WORKERS).order_by(WORKERS.c.started_at)).all()
    except exc.SQLAlchemyError as error:
        raise store_error(error, store.url, "reading workers") from error
    return [_info(r) for r in rows]


def live_workers(store: EvidenceStore) -> list[WorkerInfo]:
    """The workers that count as running now."""
    now = utcnow()
    return [w for w in workers(store) if w.live(now)]


def _info(row: sa.Row[tuple[object, ...]]) -> WorkerInfo:
    m = row._mapping
    return WorkerInfo(**{k: m[k] for k in WorkerInfo.__dataclass_fields__})
