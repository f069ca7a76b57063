"""The worker on SQLite: one process serves the database with a small loop, no job queue.

The goal rows are the queue (``queued``, and queued goals left ``interrupted``); the loop ticks
the schedules every second, starts up to ``concurrency`` goals oldest first (one at a time per
schedule, as procrastinate's lock does on PostgreSQL), and retries interrupted goals with the
same doubling backoff. The same task functions run as on PostgreSQL; only the loop differs.
A second worker on the same file is refused at registration (:mod:`apex.workers.registry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from apex.errors import GoalBusy, GoalInterrupted
from apex.goals.store import GoalStore
from apex.logging import get_logger
from apex.workers.settings import TICK_S
from apex.workers.tasks import WorkerContext, run_goal, tick

POLL_S = 0.2
"""How often the loop looks for queued goals."""

log = get_logger("apex.workers")


class _Backoff:
    """When each goal may be tried again (monotonic seconds), and how often it was tried."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}
        self.not_before: dict[str, float] = {}

    def ready(self, goal_id: str, now: float) -> bool:
        return self.not_before.get(goal_id, 0.0) <= now

    def after(self, ctx: WorkerContext, goal_id: str, error: BaseException | None) -> None:
        now = time.monotonic()
        if isinstance(error, GoalBusy):  # another process runs it: look again once it could die
            self.not_before[goal_id] = now + ctx.settings.stale_s
        elif isinstance(error, GoalInterrupted) and not ctx.stopping.is_set():
            tried = self.attempts.get(goal_id, 0)
            self.attempts[goal_id] = tried + 1
            if tried + 1 >= ctx.settings.max_attempts:  # left interrupted, for a person
                self.not_before[goal_id] = float("inf")
                ctx.emit("goal_given_up", goal_id, attempts=tried + 1)
            else:
                delay = ctx.settings.retry_delay(tried)
                self.not_before[goal_id] = now + delay
                ctx.emit("goal_retry", goal_id, in_s=delay)
        elif error is not None and not isinstance(error, GoalInterrupted):
            self.not_before[goal_id] = float("inf")  # failed: drive recorded why
            log.error("goal_job_failed", goal=goal_id, error=f"{type(error).__name__}: {error}")


async def serve(ctx: WorkerContext) -> None:
    """Serve the database until ``ctx.stopping`` is set, then stop within the grace period."""
    goals = GoalStore(ctx.store)
    backoff = _Backoff()
    running: dict[asyncio.Task[str], tuple[str, str | None]] = {}
    next_tick = 0.0
    while not ctx.stopping.is_set():
        now = time.monotonic()
        if now >= next_tick:
            next_tick = now + TICK_S
            try:
                await tick(ctx)
            except Exception as error:  # a bad schedule or a locked database: tick again later
                log.error("tick_failed", error=f"{type(error).__name__}: {error}")
        free = ctx.settings.concurrency - len(running)
        if free > 0:
            busy = {goal for goal, _ in running.values()}
            blocked = {schedule for _, schedule in running.values() if schedule}
            for goal_id, schedule in await asyncio.to_thread(goals.runnable):
                if free == 0:
                    break
                if goal_id in busy or (schedule is not None and schedule in blocked):
                    continue
                if schedule is not None:
                    blocked.add(schedule)  # its later goals wait for this one
                if not backoff.ready(goal_id, now):
                    continue
                task = asyncio.create_task(run_goal(ctx, goal_id), name=f"goal {goal_id}")
                running[task] = (goal_id, schedule)
                free -= 1
        stop = asyncio.ensure_future(ctx.stopping.wait())
        waiters: list[asyncio.Future[object]] = [stop, *running]  # type: ignore[list-item]
        await asyncio.wait(waiters, timeout=POLL_S, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        _reap(ctx, running, backoff)
    if running:  # stopping: the goals stop at their next cycle boundary, within the grace
        _, late = await asyncio.wait(list(running), timeout=ctx.settings.grace_s)
        for task in late:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*late, return_exceptions=True)
        _reap(ctx, running, backoff)


def _reap(
    ctx: WorkerContext, running: dict[asyncio.Task[str], tuple[str, str | None]], backoff: _Backoff
) -> None:
    for task in [t for t in running if t.done()]:
        goal_id, _ = running.pop(task)
        error = None if task.cancelled() else task.exception()
        backoff.after(ctx, goal_id, error)
