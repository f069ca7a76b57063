"""Workers on PostgreSQL: procrastinate runs the goal jobs and the schedules' tick.

Any number of ``apex worker`` processes on any number of machines serve one database. Each
runs two procrastinate workers in its event loop: one on the goals queue (``--concurrency``
jobs at once) and one on the ticks queue, so that a busy worker still fires schedules. The tick
is a procrastinate periodic task (every second, deferred once per second across all workers): it
retries the jobs of workers whose heartbeat stopped (a SIGKILL'd worker's goal resumes from its
checkpoint on another) and fires due schedules. Retries follow :class:`GoalRetry`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from apex.errors import GoalBusy, GoalInterrupted
from apex.goals.queue import GOALS_QUEUE, RUN_GOAL_TASK, defer, ensure_queue_schema, queue_app
from apex.goals.types import GoalSpec
from apex.logging import get_logger
from apex.workers.firing import orphans
from apex.workers.tasks import WorkerContext, run_goal, tick

if TYPE_CHECKING:
    import procrastinate
    from procrastinate.jobs import Job
    from procrastinate.retry import RetryDecision

TICK_TASK = "apex.tick"
"""The periodic task that fires schedules and retries stalled jobs."""
TICKS_QUEUE = "apex-ticks"
"""Its queue, served apart from the goals so that long goals never delay a firing."""
ORPHAN_AFTER = timedelta(seconds=30)
"""A goal queued this long without running has its job deferred again (a kept job wins)."""
MAX_BUSY_RETRIES = 10_000
"""Retries of a goal another process keeps running (each after a lease's time to live)."""

log = get_logger("apex.workers")


def _retry_strategy(ctx: WorkerContext) -> Any:
    from procrastinate.retry import BaseRetryStrategy, RetryDecision

    class GoalRetry(BaseRetryStrategy):
        """When a goal job is retried: at once when this worker stops (another one takes it),
        after a lease's time to live while another process runs the goal, with a doubling
        backoff when it was interrupted by an error that can pass; never otherwise."""

        def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
            settings = ctx.settings
            stopping = ctx.stopping.is_set()
            if stopping and isinstance(exception, GoalInterrupted | asyncio.CancelledError):
                return RetryDecision(retry_in={"milliseconds": 0})
            if isinstance(exception, GoalBusy) and job.attempts < MAX_BUSY_RETRIES:
                return RetryDecision(retry_in={"milliseconds": int(settings.stale_s * 1000)})
            if isinstance(exception, GoalInterrupted) and job.attempts < settings.max_attempts:
                delay = settings.retry_delay(job.attempts)
                return RetryDecision(retry_in={"milliseconds": int(delay * 1000)})
            return None

    return GoalRetry()


def build_app(ctx: WorkerContext) -> procrastinate.App:
    """The procrastinate app of this worker: the goal task, and the periodic tick."""
    app = queue_app(ctx.store)
    ticks = 0

    @app.task(name=RUN_GOAL_TASK, queue=GOALS_QUEUE, retry=_retry_strategy(ctx))
    async def run_goal_job(goal_id: str) -> str:
        return await run_goal(ctx, goal_id)

    @app.periodic(cron="* * * * * *", periodic_id="apex-tick")  # six fields: every second
    @app.task(name=TICK_TASK, queue=TICKS_QUEUE)
    async def tick_job(timestamp: int) -> None:
        nonlocal ticks
        del timestamp  # the due second; tick() reads the clock itself
        await _retry_stalled(app, ctx)
        await tick(ctx)
        ticks += 1
        if ticks % int(ORPHAN_AFTER.total_seconds()) == 1:
            for spec in await asyncio.to_thread(orphans, ctx.store, ORPHAN_AFTER, ctx.clock()):
                await defer(app, ctx.store, spec)

    del run_goal_job, tick_job  # registered on the app
    return app


async def _retry_stalled(app: procrastinate.App, ctx: WorkerContext) -> None:
    """Put back the jobs of workers whose heartbeat stopped (killed, or their machine died)."""
    manager = app.job_manager
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=ctx.settings.stale_s):
        with contextlib.suppress(Exception):  # another worker's tick may have retried it first
            await manager.retry_job(job)
            goal = job.task_kwargs.get("goal_id")
            ctx.emit("job_stalled", goal if isinstance(goal, str) else None, task=job.task_name)


async def serve(ctx: WorkerContext) -> None:
    """Serve the queues until ``ctx.stopping`` is set, then stop within the grace period."""
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    await asyncio.to_thread(ensure_queue_schema, ctx.store)
    app = build_app(ctx)
    settings = ctx.settings
    async with app.open_async():

        async def queue(spec: GoalSpec) -> None:
            await defer(app, ctx.store, spec)

        ctx.queue = queue
        options: dict[str, Any] = {
            "install_signal_handlers": False,  # the worker handles SIGTERM and SIGINT itself
            "update_heartbeat_interval": settings.heartbeat_s,
            "stalled_worker_timeout": settings.stale_s,
            "shutdown_graceful_timeout": settings.grace_s,
            "fetch_job_polling_interval": min(settings.heartbeat_s, 2.0),
            "delete_jobs": "successful",  # the goals table is the record; keep the queue short
        }
        workers = [
            asyncio.create_task(
                app.run_worker_async(
                    name=f"{ctx.worker_id}-goals",
                    queues=[GOALS_QUEUE],
                    concurrency=settings.concurrency,
                    **options,
                )
            ),
            asyncio.create_task(
                app.run_worker_async(
                    name=f"{ctx.worker_id}-ticks", queues=[TICKS_QUEUE], concurrency=1, **options
                )
            ),
        ]
        stopping = asyncio.create_task(ctx.stopping.wait())
        await asyncio.wait([stopping, *workers], return_when=asyncio.FIRST_COMPLETED)
        ctx.stopping.set()  # also when a procrastinate worker died on its own
        for task in workers:
            task.cancel()  # procrastinate stops fetching and waits up to the grace period
        results = await asyncio.gather(*workers, return_exceptions=True)
        stopping.cancel()
        for result in results:
            if isinstance(result, Exception):
                raise result
