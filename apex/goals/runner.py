"""Starting and resuming goals: ``await apex.Goal(...).run()`` and ``await apex.resume(id)``.

Whoever runs a goal (this process, ``apex goal resume``, a worker) holds its lease
(:mod:`apex.goals.lease`) for as long as it runs, so two processes never run one goal at once.
An error that can pass (a missing key, the database, a provider outage, a worker's shutdown)
leaves the goal ``interrupted`` and resumable; any other error leaves it ``failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable

from langchain_core.runnables import RunnableConfig

from apex.errors import (
    ApexError,
    GoalBusy,
    GoalError,
    MissingAPIKeyError,
    RemoteRequestRefused,
    StoreError,
)
from apex.evidence.panel import store_weights
from apex.fusion import check_workflow
from apex.goals.checkpoints import CHECKPOINT_ERRORS, open_checkpointer
from apex.goals.heartbeat import DEFAULT_HEARTBEAT_S, DEFAULT_LEASE_TTL_S
from apex.goals.lease import Holder, LeaseStore, hold
from apex.goals.loop import GoalDeps, GoalEvent, GoalLoopState, goal_graph
from apex.goals.store import GoalStore
from apex.goals.types import TERMINAL_STATES, GoalSpec, GoalStatus, Limits
from apex.goals.verify import VerifierFunc, VerifierSpec
from apex.graph.types import Candidate
from apex.logging import get_logger
from apex.models.client import ModelClient
from apex.redact import redact
from apex.store import EvidenceStore
from apex.telemetry import scope as traced_scope
from apex.workflow import load_workflow, parse_workflow, workflow_text

GoalEventHandler = Callable[[GoalEvent], None]
STEPS_PER_CYCLE = 8
"""Graph steps one cycle takes, for LangGraph's recursion limit."""
RESUMABLE_ERRORS: tuple[type[BaseException], ...] = (
    MissingAPIKeyError,
    RemoteRequestRefused,
    StoreError,
    *CHECKPOINT_ERRORS,
)
"""Errors that can pass: the goal is left ``interrupted`` and resumes from its checkpoint."""

log = get_logger("apex.goals")


def store_for(store: EvidenceStore | None, workflow: str | None = None) -> EvidenceStore:
    """``store``, else the store of ``APEX_DB``, else of the workflow's ``db`` key, else default."""
    if store is not None:
        return store
    return EvidenceStore(workflow_db=load_workflow(workflow).db)


class Goal:
    """A goal to pursue with fusion cycles until met, blocked or out of budget.

    ``verifier`` is a shell command or match (:class:`VerifierSpec`, stored with the goal) or a
    Python callable (in-process only: pass it again to :func:`resume`).
    """

    def __init__(
        self,
        objective: str,
        *,
        criteria: str = "",
        category: str | None = None,
        workflow: str = "local",
        limits: Limits | None = None,
        verifier: VerifierSpec | VerifierFunc | None = None,
        blocked_after: int = 3,
        store: EvidenceStore | None = None,
        goal_id: str | None = None,
        on_event: GoalEventHandler | None = None,
        n_options: int | None = None,
        context: str = "",
    ) -> None:
        text, source = workflow_text(workflow)
        wf = parse_workflow(text, source)
        self.store = store or EvidenceStore(workflow_db=wf.db)
        """Where the goal, its cycles, evidence and checkpoints live."""
        self.spec = GoalSpec(
            id=goal_id or f"g-{uuid.uuid4().hex[:12]}",
            objective=objective,
            criteria=criteria,
            category=category or wf.category,
            workflow=workflow,
            workflow_toml=text,
            limits=limits or Limits(),
            verifier=verifier if isinstance(verifier, VerifierSpec) else None,
            blocked_after=blocked_after,
            n_options=n_options,
            context=context,
        )
        """The goal as stored."""
        self.verifier_func = None if isinstance(verifier, VerifierSpec) else verifier
        self.on_event = on_event

    @property
    def id(self) -> str:
        """The goal id."""
        return self.spec.id

    def create(self) -> str:
        """Write the goal row (before any step runs); the goal id."""
        GoalStore(self.store).create(self.spec)
        return self.spec.id

    async def run(self) -> GoalStatus:
        """Create the goal and run it to a terminal state (or until paused or interrupted)."""
        self.create()
        return await drive(self.spec, self.store, self.verifier_func, self.on_event)

    def enqueue(self) -> str:
        """Put the goal on the queue for ``apex worker`` instead of running it here; its id.

        On PostgreSQL a job is deferred for it (any worker on any machine takes it); on SQLite
        the goal row is the queue, which the database's one worker reads. A Python verifier
        cannot travel with a queued goal: use a :class:`VerifierSpec`.
        """
        from apex.goals.queue import enqueue

        if self.verifier_func is not None:
            raise GoalError("a queued goal cannot take a Python verifier; use a VerifierSpec")
        GoalStore(self.store).create(self.spec, "queued")
        enqueue(self.store, self.spec)
        return self.spec.id


async def resume(
    goal_id: str,
    *,
    store: EvidenceStore | None = None,
    workflow: str | None = None,
    verifier: VerifierFunc | None = None,
    on_event: GoalEventHandler | None = None,
    holder: Holder | None = None,
) -> GoalStatus:
    """Resume a paused or interrupted goal, or one whose process died, from its checkpoint.

    Without ``store`` the goal is looked for in ``APEX_DB``, else the ``db`` of ``workflow``
    (a name or path), else the default store. Raises :class:`GoalBusy` while another process
    runs the goal.
    """
    store = store_for(store, workflow)
    goals = GoalStore(store)
    status = goals.status(goal_id)
    if status.state in TERMINAL_STATES:
        raise GoalError(f"goal {goal_id} is {status.state} ({status.reason}); nothing to resume")
    return await drive(status.spec, store, verifier, on_event, holder=holder, resume_paused=True)


async def drive(
    spec: GoalSpec,
    store: EvidenceStore,
    verifier: VerifierFunc | None = None,
    on_event: GoalEventHandler | None = None,
    *,
    holder: Holder | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume_paused: bool = False,
    lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
    heartbeat_s: float = DEFAULT_HEARTBEAT_S,
    client: ModelClient | None = None,
) -> GoalStatus:
    """Run the goal graph on its thread under the goal's lease, from the last checkpoint.

    Raises :class:`GoalBusy` (before anything runs) when another process holds the lease. A
    queued or interrupted goal becomes active; a paused one stays paused (and stops at once)
    unless ``resume_paused``. ``should_stop`` is asked at each cycle boundary (a worker's
    shutdown). A cancellation (a worker out of grace) leaves the goal interrupted. ``client``
    (a worker's, shared by its goals of one workflow) is used and left open; else one is made.
    """
    holder = holder or Holder("a Python process (apex.Goal)")
    goals = GoalStore(store)
    async with hold(LeaseStore(store, lease_ttl_s), spec.id, holder, heartbeat_s) as lease:
        if resume_paused and goals.status(spec.id).state == "paused":
            goals.set_goal_state(spec.id, "active", "resumed")
        goals.start_running(spec.id)
        try:
            await _run(spec, store, verifier, on_event, should_stop, client)
        except asyncio.CancelledError:
            if lease.lost:  # another process took the goal over: it is theirs now
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                raise GoalBusy(f"goal {spec.id} was taken over by another process") from None
            # off the event loop: a cancelled checkpoint write may still hold SQLite's write
            # lock until the loop lets its connection finish
            reason = "stopped mid-cycle (its worker ran out of grace)"
            await asyncio.to_thread(_stopped, goals, spec.id, reason)
            raise
        except RESUMABLE_ERRORS as error:
            reason = redact(" ".join(str(error).split()))
            await asyncio.to_thread(_stopped, goals, spec.id, reason)
        except ApexError as error:
            await asyncio.to_thread(goals.set_goal_state, spec.id, "failed", redact(str(error)))
            log.error("goal_failed", goal=spec.id, error=str(error))
        except Exception as error:  # an unrecoverable error: the goal fails with its reason
            reason = redact(f"{type(error).__name__}: {error}")
            await asyncio.to_thread(goals.set_goal_state, spec.id, "failed", reason)
            log.error("goal_failed", goal=spec.id, error=reason)
            raise
    return goals.status(spec.id)


def _stopped(goals: GoalStore, goal_id: str, reason: str) -> None:
    """Leave the goal interrupted with its reason (when the store can still be written)."""
    log.warning("goal_interrupted", goal=goal_id, reason=reason)
    try:
        goals.set_goal_state(goal_id, "interrupted", f"{reason}; resumes from its checkpoint")
    except StoreError as error:  # its lease goes with this process: it reads as interrupted
        log.error("goal_state_unwritten", goal=goal_id, error=str(error))


async def _run(
    spec: GoalSpec,
    store: EvidenceStore,
    verifier: VerifierFunc | None,
    on_event: GoalEventHandler | None,
    should_stop: Callable[[], bool] | None,
    shared: ModelClient | None = None,
) -> None:
    """The goal graph's stream, with providers and keys resolved before the first cycle."""
    workflow = parse_workflow(spec.workflow_toml, spec.workflow)
    max_cycles = spec.limits.max_cycles or 1000
    config: RunnableConfig = {
        "configurable": {"thread_id": spec.id},
        "recursion_limit": STEPS_PER_CYCLE * (max_cycles + 2),
        "max_concurrency": workflow.concurrency,
    }
    async with contextlib.AsyncExitStack() as stack:
        client = shared
        if client is None:
            client = await stack.enter_async_context(ModelClient(workflow.client_settings))
        saver = await stack.enter_async_context(open_checkpointer(store))
        check_workflow(workflow, client)
        graph = goal_graph(saver)
        snapshot = await graph.aget_state(config)
        start: GoalLoopState | None = None if snapshot.next else {"goal_id": spec.id}
        deps = GoalDeps(
            client=client,
            workflow=workflow,
            weights=store_weights(store),
            spec=spec,
            repo=GoalStore(store, saver),
            evidence=store,
            verifier_func=verifier,
            on_event=on_event,
            should_stop=should_stop,
        )
        stack.enter_context(traced_scope(goal_id=spec.id))  # cycles' spans live here
        async for item in graph.astream(
            start,
            config,
            context=deps,
            stream_mode="updates",
            subgraphs=True,
            durability="sync",
        ):
            _panel_progress(deps, item)


def _panel_progress(deps: GoalDeps, item: object) -> None:
    """Pass panel members' results from inside the fusion subgraph to the listener."""
    if not isinstance(item, tuple) or len(item) != 2:
        return
    namespace, chunk = item
    if not namespace or not isinstance(chunk, dict):
        return
    update = chunk.get("generate")
    if isinstance(update, dict):
        for candidate in update.get("candidates", []):
            if isinstance(candidate, Candidate):
                deps.emit("candidate", data=candidate)
