"""Goal leases: a goal is run by at most one process at a time, on SQLite and PostgreSQL alike.

A process takes the goal's lease (its ``goal_leases`` row) in a write transaction before running
the goal, and renews it with a heartbeat while it runs. Another process that wants the goal gets
:class:`~apex.errors.GoalBusy` naming the holder, unless the lease is stale: not renewed before
its ``expires_at`` (the holder's heartbeat plus its time to live), or held by a process of this
host that no longer exists, so that after a SIGKILL the goal can be taken over at once on the
same machine and after the lease's time to live from any other. A holder that finds its lease
taken over stops running the goal.

Times are the processes' own clocks (naive UTC): machines sharing a PostgreSQL database must keep
their clocks in step (NTP) to well within the time to live.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import exc

from apex.errors import GoalBusy, StoreError
from apex.goals.heartbeat import DEFAULT_HEARTBEAT_S, DEFAULT_LEASE_TTL_S
from apex.logging import get_logger
from apex.store import EvidenceStore
from apex.store.apply import insert_ignore
from apex.store.engine import read_transaction, store_error, write_transaction
from apex.store.tables import GOAL_LEASES, utcnow

log = get_logger("apex.goals.lease")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def alive(host: str, pid: int, expires_at: datetime, now: datetime | None = None) -> bool:
    """Whether a heartbeating process (a lease holder, a worker) counts as running."""
    if expires_at <= (now or utcnow()):
        return False
    return host != socket.gethostname() or pid_alive(pid)


@dataclass(frozen=True)
class Holder:
    """Who runs a goal: a label for messages, and the host and process to check liveness by."""

    label: str
    """``apex worker w-1a2b``, ``apex goal resume``, ``python``..."""
    host: str = field(default_factory=socket.gethostname)
    """Host name."""
    pid: int = field(default_factory=os.getpid)
    """Process id."""


@dataclass(frozen=True)
class Lease:
    """A goal's lease as stored."""

    goal_id: str
    holder: Holder
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime

    def live(self, now: datetime | None = None) -> bool:
        """Whether its holder counts as running the goal."""
        return alive(self.holder.host, self.holder.pid, self.expires_at, now)

    def describe(self, now: datetime | None = None) -> str:
        """``apex worker w-1 (pid 42 on host h, heartbeat 1.2s ago)``."""
        age = ((now or utcnow()) - self.heartbeat_at).total_seconds()
        return (
            f"{self.holder.label} (pid {self.holder.pid} on {self.holder.host}, "
            f"heartbeat {max(age, 0.0):.1f}s ago)"
        )


def _lease(row: sa.Row[tuple[object, ...]]) -> Lease:
    m = row._mapping
    return Lease(
        goal_id=str(m["goal_id"]),
        holder=Holder(str(m["holder"]), str(m["host"]), m["pid"]),
        acquired_at=m["acquired_at"],
        heartbeat_at=m["heartbeat_at"],
        expires_at=m["expires_at"],
    )


class LeaseStore:
    """Goal leases on an :class:`EvidenceStore`'s database."""

    def __init__(self, store: EvidenceStore, ttl_s: float = DEFAULT_LEASE_TTL_S) -> None:
        self.store = store
        """The store whose database holds the leases."""
        self.ttl = timedelta(seconds=ttl_s)
        """How long a lease this process takes stays live without a heartbeat."""

    def _values(self, holder: Holder, now: datetime) -> dict[str, object]:
        return {
            "holder": holder.label,
            "host": holder.host,
            "pid": holder.pid,
            "heartbeat_at": now,
            "expires_at": now + self.ttl,
        }

    def acquire(self, goal_id: str, holder: Holder) -> Lease:
        """Take the goal's lease, or raise :class:`GoalBusy` naming the live holder.

        One write transaction: a missing row is inserted (``ON CONFLICT DO NOTHING`` settles a
        race on PostgreSQL), an existing one is locked and taken over only when stale or ours.
        """
        now = utcnow()
        values = self._values(holder, now)
        try:
            with write_transaction(self.store.engine) as conn:
                inserted = conn.execute(
                    insert_ignore(conn, GOAL_LEASES, ["goal_id"]).returning(GOAL_LEASES.c.goal_id),
                    [{"goal_id": goal_id, "acquired_at": now, **values}],
                ).first()
                if inserted is None:
                    row = conn.execute(
                        sa.select(GOAL_LEASES)
                        .where(GOAL_LEASES.c.goal_id == goal_id)
                        .with_for_update()
                    ).one()
                    current = _lease(row)
                    if current.live(now) and current.holder != holder:
                        raise GoalBusy(
                            f"goal {goal_id} is being run by {current.describe(now)}; wait for "
                            f"it to finish, or stop it with `apex goal pause {goal_id}`"
                        )
                    conn.execute(
                        sa.update(GOAL_LEASES)
                        .where(GOAL_LEASES.c.goal_id == goal_id)
                        .values(acquired_at=now, **values)
                    )
        except exc.SQLAlchemyError as error:
            doing = f"taking the lease of goal {goal_id}"
            raise store_error(error, self.store.url, doing) from error
        return Lease(goal_id, holder, now, now, now + self.ttl)

    def renew(self, goal_id: str, holder: Holder) -> bool:
        """Beat: push the lease's expiry on; False when another process has taken it over."""
        now = utcnow()
        mine = _held_by(goal_id, holder)
        try:
            with write_transaction(self.store.engine) as conn:
                result = conn.execute(
                    sa.update(GOAL_LEASES)
                    .where(mine)
                    .values(heartbeat_at=now, expires_at=now + self.ttl)
                )
                return bool(result.rowcount)
        except exc.SQLAlchemyError as error:
            doing = f"renewing the lease of goal {goal_id}"
            raise store_error(error, self.store.url, doing) from error

    def release(self, goal_id: str, holder: Holder) -> None:
        """Give the lease up (only if it is still ours)."""
        mine = _held_by(goal_id, holder)
        try:
            with write_transaction(self.store.engine) as conn:
                conn.execute(sa.delete(GOAL_LEASES).where(mine))
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, f"releasing goal {goal_id}") from error

    def leases(self, goal_ids: list[str] | None = None) -> dict[str, Lease]:
        """The stored leases (of ``goal_ids``, or all), live or not, by goal id."""
        query = sa.select(GOAL_LEASES)
        if goal_ids is not None:
            query = query.where(GOAL_LEASES.c.goal_id.in_(goal_ids))
        try:
            with read_transaction(self.store.engine) as conn:
                return {r.goal_id: _lease(r) for r in conn.execute(query)}
        except exc.SQLAlchemyError as error:
            raise store_error(error, self.store.url, "reading goal leases") from error


@dataclass
class HeldLease:
    """A lease held by this process while a goal runs; ``lost`` once another took it over."""

    lease: Lease
    lost: bool = False


@contextlib.asynccontextmanager
async def hold(
    leases: LeaseStore, goal_id: str, holder: Holder, heartbeat_s: float = DEFAULT_HEARTBEAT_S
) -> AsyncIterator[HeldLease]:
    """Take the lease, renew it every ``heartbeat_s`` while the body runs, release it after.

    The heartbeat runs in a thread of its own, so a busy event loop does not make the lease
    look dead. When a renewal finds the lease taken over (this process was thought dead), the
    task running the body is cancelled and ``lost`` is set: the new holder runs the goal now.
    """
    held = HeldLease(leases.acquire(goal_id, holder))
    owner, loop = asyncio.current_task(), asyncio.get_running_loop()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(heartbeat_s):
            try:
                renewed = leases.renew(goal_id, holder)
            except StoreError as error:  # the database may come back before the lease expires
                log.warning("lease_renewal_failed", goal=goal_id, error=str(error))
                continue
            if not renewed:  # stop the body first: nothing after this may keep it running
                held.lost = True
                if owner is not None:
                    loop.call_soon_threadsafe(owner.cancel)
                log.error("lease_lost", goal=goal_id)
                return

    beating = threading.Thread(target=beat, name=f"lease {goal_id}", daemon=True)
    beating.start()
    try:
        yield held
    finally:
        stop.set()
        await asyncio.to_thread(beating.join)
        if not held.lost:
            try:  # off the loop, like every write that may wait for SQLite's lock here
                await asyncio.to_thread(leases.release, goal_id, holder)
            except StoreError as error:  # it expires on its own
                log.warning("lease_release_failed", goal=goal_id, error=str(error))


def _held_by(goal_id: str, holder: Holder) -> sa.ColumnElement[bool]:
    """The lease row of ``goal_id`` as long as ``holder`` still holds it."""
    return sa.and_(
        GOAL_LEASES.c.goal_id == goal_id,
        GOAL_LEASES.c.host == holder.host,
        GOAL_LEASES.c.pid == holder.pid,
        GOAL_LEASES.c.holder == holder.label,
    )
