"""The data of one fusion cycle: candidates, critiques, the judge's analysis and the result.

The judge's input type (:class:`JudgeInput`) carries anonymous labels only: no model names, no
providers, no arrival order. Everything else keeps model names, because evidence is per model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from apex.errors import AllPanelFailed, QuorumFailed
from apex.models.types import CallFailure
from apex.models.types import CallRecord as CallRecord  # re-exported: the cycle's calls

ProblemType = Literal["factual", "reasoning", "incomplete", "off_task", "unsafe", "format"]
Severity = Literal["low", "medium", "high"]
SynthesisPath = Literal[
    "judge",  # the judge wrote the answer on its first try
    "judge_retry",  # the judge failed once, then succeeded
    "fallback_judge",  # the judge failed twice; the fallback judge answered
    "select",  # select mode: the judge picked a candidate verbatim
    "vote",  # vote mode: weighted plurality of extracted answers
    "vote_fallback",  # the judge(s) failed; weighted vote over extractable answers
    "best_record",  # nothing else worked: the candidate whose model has the best record
    "quorum_failed",  # fewer than `quorum` panel members succeeded
    "all_panel_failed",  # every panel member failed
]
FAILED_PATHS: frozenset[str] = frozenset({"quorum_failed", "all_panel_failed"})


class Candidate(BaseModel):
    """A panel member's answer (or failure)."""

    member: int
    """Index in the workflow's panel."""
    model: str
    """``provider:model``."""
    text: str = ""
    """The answer text."""
    failure: CallFailure | None = None
    """Why it failed, if it did."""
    call: CallRecord
    """The call that produced it."""

    @property
    def ok(self) -> bool:
        """True when the member produced an answer."""
        return self.failure is None


class Problem(BaseModel):
    """One concrete problem a critic found in a candidate."""

    type: ProblemType
    """What kind of problem."""
    severity: Severity
    """How bad."""
    detail: str = Field(default="", max_length=400)
    """What is wrong, in a sentence."""


class Review(BaseModel):
    """A critic's problems with one candidate, by label."""

    label: str
    """The candidate's anonymous label."""
    problems: list[Problem] = Field(default_factory=list)
    """Problems found (empty when none)."""


class Critique(BaseModel):
    """One critic's reviews of every candidate."""

    critic: str
    """The critic's model spec (never shown to the judge)."""
    index: int
    """Index in the workflow's critics."""
    reviews: list[Review] = Field(default_factory=list)
    """Per-candidate reviews."""
    call: CallRecord
    """The call that produced it."""


class LabeledCandidate(BaseModel):
    """A candidate as the judge and critics see it: a label and a text."""

    label: str
    """A, B, C, ... (shuffled: not panel order, not arrival order)."""
    text: str
    """The answer."""


class ReliabilityHint(BaseModel):
    """What the evidence says about a label's author, without naming it."""

    label: str
    """The candidate label."""
    weight: float
    """Relative reliability, 1.0 = average."""
    note: str = ""
    """A short human-readable summary of the record."""


class GoalAssessment(BaseModel):
    """The judge's view of a goal after a cycle (goal loops only)."""

    goal_met: bool
    """Whether the answer meets the objective and its success criteria."""
    reasons: list[str] = Field(default_factory=list)
    """Why it is, or is not, met."""
    missing: list[str] = Field(default_factory=list)
    """What is still missing."""
    blocker: str = ""
    """What prevents progress, '' when nothing does."""


class JudgeInput(BaseModel):
    """Everything the judge may see, and nothing more."""

    prompt: str
    """The user's prompt."""
    mode: Literal["judge", "select"]
    """Write a new answer, or select one candidate verbatim."""
    candidates: list[LabeledCandidate]
    """Candidates in label order."""
    critiques: list[Review] = Field(default_factory=list)
    """Critics' reviews by label (critic identities removed)."""
    hints: list[ReliabilityHint] = Field(default_factory=list)
    """Per-label reliability from evidence, when any exists."""
    guidance: str = ""
    """Extra instructions (e.g. a goal's success criteria)."""
    goal: bool = False
    """Also assess whether the goal is met (goal loops)."""


class Analysis(BaseModel):
    """The judge's structured analysis of the candidates."""

    consensus: list[str] = Field(default_factory=list)
    """Points most candidates agree on."""
    contradictions: list[str] = Field(default_factory=list)
    """Points where candidates disagree."""
    partial_coverage: list[str] = Field(default_factory=list)
    """Points only some candidates cover."""
    unique_insights: list[str] = Field(default_factory=list)
    """Valuable points made by a single candidate."""
    blind_spots: list[str] = Field(default_factory=list)
    """What every candidate missed."""


class LabelScore(BaseModel):
    """The judge's score of one candidate."""

    label: str
    """The candidate label."""
    score: float = Field(ge=0, le=1)
    """0 (useless) to 1 (excellent)."""
    reason: str = ""
    """Why."""


class JudgeVerdict(BaseModel):
    """What the judge returned, validated."""

    analysis: Analysis
    """The structured analysis."""
    scores: list[LabelScore]
    """A score per candidate."""
    final_answer: str
    """The synthesized answer (select mode: the chosen candidate's text)."""
    selected: str | None = None
    """Select mode: the chosen label."""
    goal: GoalAssessment | None = None
    """Goal loops: whether the goal is met."""


class CandidateReport(BaseModel):
    """A candidate in the result: who wrote it, under which label, how it went."""

    label: str | None
    """Its label (None for failed members, which the judge never saw)."""
    member: int
    """Panel index."""
    model: str
    """``provider:model``."""
    ok: bool
    """Whether it produced an answer."""
    error: str | None = None
    """Failure kind and message, if it failed."""
    text: str = ""
    """The answer."""
    score: float | None = None
    """The judge's score, when judged."""
    latency_s: float = 0.0
    """Call wall time."""
    tokens: int | None = None
    """Total tokens."""
    cost_usd: float | None = None
    """Call cost."""


class FusionResult(BaseModel):
    """The outcome of one fusion cycle."""

    run_id: str
    """Unique id of this run."""
    prompt: str
    """The prompt."""
    category: str
    """Task category for evidence."""
    workflow: str
    """Workflow name."""
    answer: str
    """The final answer ('' when the cycle failed)."""
    synthesis_path: SynthesisPath
    """Which path produced the answer."""
    analysis: Analysis = Field(default_factory=Analysis)
    """The judge's analysis (empty when no judge answered)."""
    candidates: list[CandidateReport]
    """Every panel member, failed ones included."""
    critiques: list[Critique] = Field(default_factory=list)
    """Every critic's reviews."""
    calls: list[CallRecord]
    """Every model call of the cycle."""
    judge_model: str | None = None
    """The judge that produced the verdict, when one did."""
    goal: GoalAssessment | None = None
    """Goal loops: the judge's assessment of the goal (None when no judge answered)."""
    extracted: dict[str, str | None] = Field(default_factory=dict)
    """Extracted comparable answers by label (vote and fallbacks)."""
    answer_extracted: str | None = None
    """The final answer read the same way as the candidates' (for ground truth on the judge)."""
    n_options: int | None = None
    """The question's number of options, when it has a fixed set (corrects for chance)."""
    label_weights: dict[str, float] = Field(default_factory=dict)
    """The evidence weight each label's author had in this cycle (1.0 without evidence)."""
    cost_usd: float | None = None
    """Total cost; None when any call's cost is unknown."""
    latency_s: float = 0.0
    """Wall time of the cycle."""

    @property
    def ok(self) -> bool:
        """True when the cycle produced an answer."""
        return self.synthesis_path not in FAILED_PATHS

    def raise_for_failure(self) -> FusionResult:
        """Return self, or raise :class:`~apex.errors.AllPanelFailed` / ``QuorumFailed``."""
        failed = [c.error for c in self.candidates if not c.ok]
        if self.synthesis_path == "all_panel_failed":
            raise AllPanelFailed(f"run {self.run_id}: every panel member failed: {failed}")
        if self.synthesis_path == "quorum_failed":
            answered = sum(c.ok for c in self.candidates)
            raise QuorumFailed(f"run {self.run_id}: only {answered} panel member(s) answered")
        return self
