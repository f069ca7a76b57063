"""Workers: queued goals and scheduled goals, run by ``apex worker`` processes.

On SQLite one worker serves the database; on PostgreSQL any number of workers on any number of
machines share it through procrastinate. A goal is run by one process at a time (its lease),
and a goal whose worker died resumes from its checkpoint on another.
"""

from apex.workers.schedules import Schedule, ScheduleInfo, ScheduleSpec, ScheduleStore
from apex.workers.settings import WorkerSettings
from apex.workers.tasks import WorkerContext, WorkerEvent
from apex.workers.timing import Rule
from apex.workers.worker import run_worker

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
