"""Goals run by the server: asyncio tasks over :func:`apex.goals.resume` (or the workers' queue),
and their events.

:meth:`GoalRunner.dispatch` is the one place that decides *where* a goal runs: a new goal, a
resumed one and an unfinished one found at start-up all go through it. Where ``apex worker``
processes serve the store (a live worker is registered in it), the goal is put on their queue
(:func:`apex.goals.queue.enqueue`, as ``apex goal start --queue`` does); otherwise the server
runs it itself, as a task here. Either way ``apex.goals.resume(goal_id)`` continues from the
goal's last checkpoint (a new goal has none and starts at its first cycle), so a server killed
mid-goal and started again makes no finished call twice.

Events (cycle started, each panel member, cycle finished, state) fan out to SSE subscribers
through :class:`GoalEvents`; the goal loop may call its listener from a worker thread, so
publishing hands each event to the event loop.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from pydantic import BaseModel

from apex.errors import ApexError
from apex.goals import GoalEvent, resume
from apex.goals.queue import enqueue
from apex.goals.store import GoalStore
from apex.goals.types import TERMINAL_STATES, GoalStatus
from apex.graph.types import Candidate
from apex.logging import get_logger
from apex.store import EvidenceStore
from apex.workers.registry import live_workers

log = get_logger("apex.server")

CLOSED: dict[str, Any] = {"kind": "closed"}
"""Sent to every subscriber when the server stops."""
MAX_RESTARTS = 100
"""A goal resumed while its task was stopping is driven again, at most this many times."""
UNFINISHED = ("active", "interrupted")
"""States of goals a server resumes at start."""


def event_json(event: GoalEvent) -> dict[str, Any]:
    """A goal loop event as JSON."""
    data = event.data
    if isinstance(data, Candidate):
        data = {
            "member": data.member,
            "model": data.model,
            "ok": data.ok,
            "failure": data.failure.kind if data.failure else None,
            "latency_s": round(data.call.latency_s, 3),
        }
    elif isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return {"kind": event.kind, "goal_id": event.goal_id, "cycle": event.cycle, "data": data}


def state_json(status: GoalStatus) -> dict[str, Any]:
    """A ``state`` event for ``status``."""
    data = {"state": status.state, "reason": status.reason, "best_answer": status.best_answer}
    return {"kind": "state", "goal_id": status.spec.id, "cycle": len(status.cycles), "data": data}


class GoalEvents:
    """Per-goal fan-out of events to subscriber queues; :meth:`publish` is thread-safe."""

    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop subscribers live in."""
        self._loop = loop

    def subscribe(self, goal_id: str) -> asyncio.Queue[dict[str, Any]]:
        """A new queue receiving the goal's events from now on."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues[goal_id].add(queue)
        return queue

    def unsubscribe(self, goal_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop delivering to ``queue``."""
        self._queues[goal_id].discard(queue)
        if not self._queues[goal_id]:
            del self._queues[goal_id]

    def _deliver(self, goal_id: str, event: dict[str, Any]) -> None:
        for queue in list(self._queues.get(goal_id, ())):
            queue.put_nowait(event)

    def publish(self, goal_id: str, event: dict[str, Any]) -> None:
        """Send ``event`` to the goal's subscribers (from any thread)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._deliver, goal_id, event)

    def close(self) -> None:
        """Tell every subscriber the server is stopping."""
        for goal_id in list(self._queues):
            self._deliver(goal_id, CLOSED)


class GoalRunner:
    """The goals this process runs, one task each."""

    def __init__(self, store: EvidenceStore, events: GoalEvents) -> None:
        self.store = store
        """Where goals, cycles and checkpoints live."""
        self.events = events
        """Where their events go."""
        self.tasks: dict[str, asyncio.Task[None]] = {}
        """Running goals by id."""
        self._again: set[str] = set()

    def running(self, goal_id: str) -> bool:
        """Whether this process is running the goal now."""
        task = self.tasks.get(goal_id)
        return task is not None and not task.done()

    def dispatch(self, goal_id: str, *, queue: bool = True) -> str:
        """Have the goal run: on the workers' queue when a worker serves the store (and
        ``queue``), else as a task in this process; where (``queued`` or ``here``).

        A goal whose task is still running (stopping at a pause) is driven again once it stops.
        """
        if self.running(goal_id):
            self._again.add(goal_id)
            return "here"
        if queue and live_workers(self.store):
            enqueue(self.store, GoalStore(self.store).status(goal_id).spec)
            log.info("goal_queued", goal=goal_id)
            return "queued"
        task = asyncio.get_running_loop().create_task(self._run(goal_id), name=f"goal-{goal_id}")
        self.tasks[goal_id] = task
        task.add_done_callback(lambda done: self._forget(goal_id, done))
        return "here"

    def paused(self, goal_id: str) -> None:
        """A pause was asked for: do not drive the goal again when its task stops."""
        self._again.discard(goal_id)

    def _forget(self, goal_id: str, task: asyncio.Task[None]) -> None:
        if self.tasks.get(goal_id) is task:
            del self.tasks[goal_id]
            self._again.discard(goal_id)

    def resume_unfinished(self) -> list[str]:
        """Dispatch every goal left running by a process that died or stopped (``active``, or
        ``interrupted`` where the store knows that state); their ids. They run here, never on the
        queue (a live worker may be running one: its lease refuses this process, and the goal
        stays with the worker). Paused goals stay paused, queued ones are left to workers."""
        goals = GoalStore(self.store)
        found = [s.spec.id for state in UNFINISHED for s in goals.all(state)]
        ids = list(dict.fromkeys(found))
        for goal_id in ids:
            log.info("goal_resumed_at_start", goal=goal_id)
            self.dispatch(goal_id, queue=False)
        return ids

    def _listener(self, goal_id: str) -> Any:
        def listen(event: GoalEvent) -> None:
            if event.kind != "state":  # the runner publishes the state once the loop stops
                self.events.publish(goal_id, event_json(event))

        return listen

    async def _run(self, goal_id: str) -> None:
        try:
            for _ in range(MAX_RESTARTS):
                self._again.discard(goal_id)
                status = await resume(goal_id, store=self.store, on_event=self._listener(goal_id))
                self.events.publish(goal_id, state_json(status))
                if goal_id not in self._again or status.state in TERMINAL_STATES:
                    return
        except ApexError as error:  # e.g. another process holds the goal, or it is finished
            log.warning("goal_not_run", goal=goal_id, error=str(error))
        except Exception as error:  # the loop recorded the goal as failed with its reason
            log.error("goal_crashed", goal=goal_id, error=f"{type(error).__name__}: {error}")
            status = await asyncio.to_thread(GoalStore(self.store).status, goal_id)
            self.events.publish(goal_id, state_json(status))

    async def aclose(self) -> None:
        """Cancel every running goal and wait for the tasks to end; the goals stay resumable
        (active or interrupted) and resume from their checkpoints when a server starts again."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
