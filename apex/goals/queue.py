"""The goal queue: goals put aside for ``apex worker`` processes, on SQLite and PostgreSQL.

A queued goal has state ``queued`` and ``queued_at`` set. On SQLite that row is the whole queue:
the database's one worker reads it. On PostgreSQL a procrastinate job
``apex.run_goal(goal_id=...)`` is deferred too, so that any number of workers on any number of
machines share the work: its ``queueing_lock`` is the goal id (never two waiting jobs for one
goal) and its ``lock`` the goal's schedule, else its id (the goals of one schedule run one after
another, a goal never in two jobs at once). The job only names the goal: the goal's progress is
in its LangGraph checkpoints, so a retried job resumes from the checkpoint.

procrastinate's tables live in the store's own database and schema (the URL's ``search_path``),
created on first use here or by the first worker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sqlalchemy import exc, text
from sqlalchemy.engine import make_url

from apex.errors import StoreError
from apex.goals.store import GoalStore
from apex.goals.types import GoalSpec
from apex.store import EvidenceStore
from apex.store.engine import store_error, write_transaction

if TYPE_CHECKING:
    import procrastinate

RUN_GOAL_TASK = "apex.run_goal"
"""The procrastinate task that runs (or resumes) one goal by id."""
GOALS_QUEUE = "apex-goals"
"""The procrastinate queue of goal jobs."""
_PG_QUEUE_SCHEMA_LOCK = 0x41504551  # "APEQ": the advisory lock taken while creating the tables


def is_postgres(store: EvidenceStore) -> bool:
    """Whether the store is on PostgreSQL (where the queue is procrastinate's)."""
    return store.engine.dialect.name == "postgresql"


def conninfo(store: EvidenceStore) -> str:
    """The store's URL as a libpq connection string (``options``, e.g. search_path, kept)."""
    url = make_url(store.url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def queue_app(store: EvidenceStore) -> procrastinate.App:
    """A procrastinate app on the store's PostgreSQL database (tasks are registered by
    :mod:`apex.workers`; deferring needs only their names)."""
    try:
        import procrastinate
    except ImportError as error:
        raise StoreError(
            "queued goals on PostgreSQL need procrastinate: pip install 'apex-fusion[postgres]'"
        ) from error
    connector = procrastinate.PsycopgConnector(conninfo=conninfo(store))
    return procrastinate.App(connector=connector)


def ensure_queue_schema(store: EvidenceStore) -> None:
    """Create procrastinate's tables in the store's schema unless they exist (under a lock)."""
    from procrastinate.schema import SchemaManager

    try:
        with write_transaction(store.engine) as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_QUEUE_SCHEMA_LOCK})
            if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
                # psycopg reads % as a placeholder marker even without parameters
                conn.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))
    except exc.SQLAlchemyError as error:
        raise store_error(error, store.url, "creating the job queue's tables") from error


def job_lock(spec: GoalSpec) -> str:
    """The job's procrastinate ``lock``: one schedule's goals run one at a time, in order."""
    return f"schedule:{spec.schedule}" if spec.schedule else f"goal:{spec.id}"


@contextlib.contextmanager
def _queue_errors(store: EvidenceStore, goal_id: str) -> Iterator[None]:
    import procrastinate.exceptions as errors

    try:
        yield
    except errors.AlreadyEnqueued:  # a job for this goal is already waiting: that one runs it
        pass
    except errors.ConnectorException as error:
        raise store_error(error, store.url, f"queueing goal {goal_id}") from error


def defer_sync(app: procrastinate.App, store: EvidenceStore, spec: GoalSpec) -> None:
    """Defer the goal's job through an open (sync) app; a job already waiting is kept."""
    with _queue_errors(store, spec.id):
        app.configure_task(
            RUN_GOAL_TASK, queue=GOALS_QUEUE, lock=job_lock(spec), queueing_lock=spec.id
        ).defer(goal_id=spec.id)


async def defer(app: procrastinate.App, store: EvidenceStore, spec: GoalSpec) -> None:
    """Defer the goal's job through an open (async) app; a job already waiting is kept."""
    with _queue_errors(store, spec.id):
        await app.configure_task(
            RUN_GOAL_TASK, queue=GOALS_QUEUE, lock=job_lock(spec), queueing_lock=spec.id
        ).defer_async(goal_id=spec.id)


def enqueue(store: EvidenceStore, spec: GoalSpec) -> None:
    """Put an existing goal on the queue (state ``queued``), deferring its job on PostgreSQL."""
    GoalStore(store).mark_queued(spec.id)
    if not is_postgres(store):
        return
    ensure_queue_schema(store)
    app = queue_app(store)
    with app.open():
        defer_sync(app, store, spec)
