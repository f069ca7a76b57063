"""Workers: queued goals and scheduled goals, run by ``apex worker`` processes.

On SQLite one worker serves the database; on PostgreSQL any number of workers on any number of
machines share it through procrastinate. A goal is run by one process at a time (its lease),
and a goal whose worker died resumes from its checkpoint on another. The public names load their
module on first use, so ``apex status`` does not import the goal loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apex.lazy import lazy_names

if TYPE_CHECKING:
    from apex.workers.schedules import Schedule, ScheduleInfo, ScheduleSpec, ScheduleStore
    from apex.workers.settings import WorkerSettings
    from apex.workers.tasks import WorkerContext, WorkerEvent
    from apex.workers.timing import Rule
    from apex.workers.worker import run_worker

_LAZY = {
    "Schedule": "apex.workers.schedules",
    "ScheduleInfo": "apex.workers.schedules",
    "ScheduleSpec": "apex.workers.schedules",
    "ScheduleStore": "apex.workers.schedules",
    "WorkerSettings": "apex.workers.settings",
    "WorkerContext": "apex.workers.tasks",
    "WorkerEvent": "apex.workers.tasks",
    "Rule": "apex.workers.timing",
    "run_worker": "apex.workers.worker",
}


__getattr__ = lazy_names(__name__, _LAZY, globals())

__all__ = [
    "Rule",
    "Schedule",
    "ScheduleInfo",
    "ScheduleSpec",
    "ScheduleStore",
    "WorkerContext",
    "WorkerEvent",
    "WorkerSettings",
    "run_worker",
]
