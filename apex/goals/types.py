"""What a goal is: objective, criteria, limits, verifier, and the record of its cycles."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from apex.goals.verify import VerifierSpec

GoalStateName = Literal[
    "queued",
    "active",
    "paused",
    "interrupted",
    "complete",
    "budget_limited",
    "blocked",
    "failed",
    "cancelled",
]
TERMINAL_STATES: frozenset[str] = frozenset(
    {"complete", "budget_limited", "blocked", "failed", "cancelled"}
)
RESUMABLE_STATES: frozenset[str] = frozenset({"queued", "active", "paused", "interrupted"})
"""States a goal can be run or resumed from (``interrupted``: stopped on an error that can
pass, or its process died; ``queued``: waiting for a worker)."""
DEFAULT_MAX_CYCLES = 10
DEFAULT_BLOCKED_AFTER = 3


class Limits(BaseModel):
    """When a goal must stop even if it is not met."""

    max_cycles: int | None = Field(default=DEFAULT_MAX_CYCLES, ge=1)
    """At most this many fusion cycles."""
    budget_usd: float | None = Field(default=None, gt=0)
    """Stop before spending more than this (cost as reported or priced)."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Stop before using more tokens than this."""
    deadline: AwareDatetime | None = None
    """Stop once this moment has passed (must carry a time zone: a naive one is refused)."""


class GoalSpec(BaseModel):
    """A goal as stored: everything needed to run or resume it in any process."""

    id: str
    """Goal id; also the checkpointer's thread id."""
    objective: str
    """What to achieve."""
    criteria: str = ""
    """How to tell it is achieved."""
    category: str = "general"
    """Task category for evidence."""
    workflow: str = "local"
    """Workflow name or path, as given."""
    workflow_toml: str = ""
    """The workflow file's text when the goal started, so a resume uses the same one."""
    limits: Limits = Field(default_factory=Limits)
    """Stop conditions."""
    verifier: VerifierSpec | None = None
    """The verifier, when one is given (it has the last word)."""
    blocked_after: int = Field(default=DEFAULT_BLOCKED_AFTER, ge=1)
    """Blocked when the judge reports the same blocker this many cycles in a row."""
    n_options: int | None = Field(default=None, ge=2)
    """The objective's number of options, when it is a choice among fixed options."""
    context: str = ""
    """Carried in from outside (a schedule's previous firing), shown to the panel every cycle."""
    schedule: str | None = None
    """The schedule whose firing created the goal, if any."""


class CycleSummary(BaseModel):
    """One cycle of a goal, as ``apex goal show`` lists it."""

    cycle: int
    """1-based cycle number."""
    run_id: str
    """The fusion run of this cycle."""
    answer: str
    """The cycle's synthesized answer."""
    synthesis_path: str
    """How the answer was produced."""
    judge_met: bool | None = None
    """The judge's goal_met (None when no judge answered)."""
    verified: bool | None = None
    """The verifier's verdict (None without a verifier)."""
    feedback: str = ""
    """Verifier output and the judge's reasons, passed to the next cycle."""
    missing: list[str] = Field(default_factory=list)
    """What the judge says is still missing."""
    blocker: str = ""
    """What the judge says blocks progress."""
    cost_usd: float | None = None
    """Cost of the cycle (None when unknown)."""
    tokens: int = 0
    """Tokens used by the cycle (as reported)."""
    outage: bool = False
    """Every panel call failed in a way that can pass (connection, timeout, 429, HTTP error):
    the cycle counts toward no limit and leaves the goal interrupted, not blocked."""

    @property
    def met(self) -> bool:
        """The verifier's word when there is one, else the judge's."""
        return self.verified if self.verified is not None else bool(self.judge_met)


class GoalStatus(BaseModel):
    """A goal's current state and totals."""

    spec: GoalSpec
    """The goal."""
    state: GoalStateName
    """Where it stands."""
    reason: str = ""
    """Why it is in that state (terminal states)."""
    cycles: list[CycleSummary] = Field(default_factory=list)
    """Cycles so far."""
    best_answer: str = ""
    """The best answer so far (or the wrap-up summary once budget_limited)."""
    cost_usd: float = 0.0
    """Known cost so far."""
    tokens: int = 0
    """Tokens so far."""
    holder: str = ""
    """Who runs it now, with its heartbeat (empty when no live process does)."""
    queued: bool = False
    """Whether it was put on the queue for workers."""
    created_at: datetime | None = None
    """When the goal was started."""
    updated_at: datetime | None = None
    """When it last changed."""
