"""Starting and resuming goals: ``await apex.Goal(...).run()`` and ``await apex.resume(id)``."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from langchain_core.runnables import RunnableConfig

from apex.errors import ApexError, GoalError
from apex.evidence.panel import store_weights
from apex.goals.checkpoints import open_checkpointer
from apex.goals.loop import GoalDeps, GoalEvent, GoalLoopState, build_goal_graph
from apex.goals.store import GoalStore
from apex.goals.types import TERMINAL_STATES, GoalSpec, GoalStatus, Limits
from apex.goals.verify import VerifierFunc, VerifierSpec
from apex.graph.types import Candidate
from apex.logging import get_logger
from apex.models.client import ModelClient
from apex.redact import redact
from apex.store import EvidenceStore
from apex.workflow import parse_workflow, workflow_text

GoalEventHandler = Callable[[GoalEvent], None]
STEPS_PER_CYCLE = 8
"""Graph steps one cycle takes, for LangGraph's recursion limit."""

log = get_logger("apex.goals")


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
        """Create the goal and run it to a terminal state (or until paused)."""
        self.create()
        return await drive(self.spec, self.store, self.verifier_func, self.on_event)


async def resume(
    goal_id: str,
    *,
    store: EvidenceStore | None = None,
    verifier: VerifierFunc | None = None,
    on_event: GoalEventHandler | None = None,
) -> GoalStatus:
    """Resume a paused goal, or one whose process died, from its last checkpoint."""
    store = store or EvidenceStore()
    goals = GoalStore(store)
    status = goals.status(goal_id)
    if status.state in TERMINAL_STATES:
        raise GoalError(f"goal {goal_id} is {status.state} ({status.reason}); nothing to resume")
    if status.state == "paused":
        goals.set_goal_state(goal_id, "active", "resumed")
    return await drive(status.spec, store, verifier, on_event)


async def drive(
    spec: GoalSpec,
    store: EvidenceStore,
    verifier: VerifierFunc | None = None,
    on_event: GoalEventHandler | None = None,
) -> GoalStatus:
    """Run the goal graph on its thread: from the last checkpoint if one is unfinished."""
    goals = GoalStore(store)
    workflow = parse_workflow(spec.workflow_toml, spec.workflow)
    max_cycles = spec.limits.max_cycles or 1000
    config: RunnableConfig = {
        "configurable": {"thread_id": spec.id},
        "recursion_limit": STEPS_PER_CYCLE * (max_cycles + 2),
        "max_concurrency": workflow.concurrency,
    }
    try:
        async with (
            ModelClient(workflow.client_settings) as client,
            open_checkpointer(store) as saver,
        ):
            graph = build_goal_graph(saver)
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
            )
            async for item in graph.astream(
                start,
                config,
                context=deps,
                stream_mode="updates",
                subgraphs=True,
                durability="sync",
            ):
                _panel_progress(deps, item)
    except ApexError as error:
        goals.set_goal_state(spec.id, "failed", redact(str(error)))
        log.error("goal_failed", goal=spec.id, error=str(error))
    except Exception as error:  # an unrecoverable error: the goal fails with its reason
        reason = redact(f"{type(error).__name__}: {error}")
        goals.set_goal_state(spec.id, "failed", reason)
        log.error("goal_failed", goal=spec.id, error=reason)
        raise
    return goals.status(spec.id)


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
