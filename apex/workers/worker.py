"""``apex worker``: serve a database's queued goals and schedules until told to stop.

SIGTERM or Ctrl-C stops taking work; the running goals stop at their next cycle boundary (their
state checkpointed, the goal put back on the queue) within the grace period, after which what
still runs is cancelled and left ``interrupted`` to resume from its last checkpoint. The worker
then unregisters and returns, so the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable

from apex.errors import StoreError
from apex.goals.queue import is_postgres
from apex.logging import get_logger
from apex.store import EvidenceStore
from apex.workers import pg, sqlite_loop
from apex.workers.registry import WorkerRegistry, new_worker_id
from apex.workers.settings import WorkerSettings
from apex.workers.tasks import WorkerContext, WorkerEvent

log = get_logger("apex.workers")


async def run_worker(
    store: EvidenceStore,
    settings: WorkerSettings | None = None,
    *,
    on_event: Callable[[WorkerEvent], None] | None = None,
    handle_signals: bool = True,
    context: WorkerContext | None = None,
) -> WorkerContext:
    """Serve ``store`` until SIGTERM / SIGINT (or ``context.stopping`` is set); the context.

    Raises :class:`~apex.errors.WorkerError` when another worker already serves an SQLite file.
    """
    settings = settings or WorkerSettings()
    ctx = context or WorkerContext(store, settings, new_worker_id(), on_event=on_event)
    postgres = is_postgres(store)
    registry = WorkerRegistry(store, settings.stale_s)
    registry.register(ctx.worker_id, os.getpid(), settings.concurrency, exclusive=not postgres)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if not ctx.stopping.is_set():
            ctx.emit("worker_stopping", grace_s=settings.grace_s, running=sorted(ctx.running))
            ctx.stopping.set()

    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)

    async def beat() -> None:
        while True:
            await asyncio.sleep(settings.heartbeat_s)
            state = "stopping" if ctx.stopping.is_set() else "running"
            try:
                await asyncio.to_thread(registry.beat, ctx.worker_id, state)
            except StoreError as error:
                log.warning("worker_heartbeat_failed", error=str(error))

    beating = asyncio.create_task(beat(), name="worker heartbeat")
    ctx.emit("worker_started", backend="postgresql" if postgres else "sqlite",
             db=store.masked_url, concurrency=settings.concurrency)  # fmt: skip
    try:
        await (pg.serve if postgres else sqlite_loop.serve)(ctx)
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        for client in ctx.clients.values():
            await client.aclose()
        try:
            registry.unregister(ctx.worker_id)
        except StoreError as error:  # it expires on its own
            log.warning("worker_unregister_failed", error=str(error))
        ctx.emit("worker_stopped")
    return ctx
