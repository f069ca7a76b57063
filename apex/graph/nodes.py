"""The three kinds of model-calling node: generator, critic and judge.

Each takes only its own task type (sent to it with LangGraph's ``Send``) and the one model it may
call; none of them reads the graph state or the workflow. The judge's task type is
:class:`JudgeInput`, which carries labels, never model names, and its dependency is
:class:`JudgeDeps`, which can call the judge models only.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ValidationError

from apex.graph.answer_stream import AnswerStream
from apex.graph.prompts import (
    ANSWER_FORMAT,
    CRITIC_SCHEMA,
    critic_messages,
    generator_messages,
    judge_messages,
    judge_schema,
)
from apex.graph.types import (
    Analysis,
    CallRecord,
    Candidate,
    Critique,
    GoalAssessment,
    JudgeInput,
    JudgeVerdict,
    LabeledCandidate,
    LabelScore,
    Review,
)
from apex.models.client import ChatModel, ModelClient
from apex.models.types import CallFailure, ChatRequest, ChatResult
from apex.telemetry import role as traced_role
from apex.types import Role
from apex.workflow import CriticConfig, PanelMember, Workflow

DEFAULT_JUDGE_MAX_TOKENS = 1024
"""The judge's token cap when neither it nor the workflow asks for more."""

WeightSource = Callable[[list[str], str, int | None], Awaitable[dict[str, float]]]
"""Given panel model specs, a category and the number of options, their current weights
(1.0 = no evidence)."""


@dataclass(frozen=True)
class JudgeDeps:
    """Everything the judge node may use, and nothing more: its own models and settings.

    It holds no client, no workflow and no store: the judge can call only ``primary`` and
    ``fallback``, and knows nothing of the panel but the labelled texts in its input.
    """

    primary: ChatModel
    """The judge."""
    fallback: ChatModel | None = None
    """The judge tried when the first fails twice."""
    temperature: float | None = None
    """Sampling temperature."""
    max_tokens: int = DEFAULT_JUDGE_MAX_TOKENS
    """Token cap for the verdict."""
    on_answer: Callable[[str], None] | None = None
    """Hears the answer so far while the judge writes it (judge mode, streaming providers)."""


@dataclass
class FusionDeps:
    """What the cycle's nodes are built from: the client, the workflow, evidence, randomness.

    Node functions never receive this whole: each gets only its own model (and the judge
    only :class:`JudgeDeps`, see :meth:`judge_deps`).
    """

    client: ModelClient
    workflow: Workflow
    weights: WeightSource | None = None
    rng: random.Random = field(default_factory=random.SystemRandom)
    on_answer: Callable[[str], None] | None = None

    def judge_deps(self) -> JudgeDeps | None:
        """The judge's own dependencies (None when the workflow has no judge)."""
        config = self.workflow.judge
        if config is None:
            return None
        return JudgeDeps(
            primary=self.client.model(config.model),
            fallback=self.client.model(config.fallback) if config.fallback else None,
            temperature=config.temperature,
            max_tokens=config.max_tokens or max(self.workflow.max_tokens, DEFAULT_JUDGE_MAX_TOKENS),
            on_answer=self.on_answer,
        )

    def answer_format(self) -> str:
        """What generators are told about the answer's form (vote synthesis only)."""
        if self.workflow.synthesis != "vote":
            return ""
        return ANSWER_FORMAT.get(self.workflow.extraction.kind, "")


class GenerateTask(BaseModel):
    """One panel member's job."""

    member: int
    spec: PanelMember
    prompt: str
    context: str = ""


class CritiqueTask(BaseModel):
    """One critic's job: the prompt and the anonymized candidates."""

    index: int
    spec: CriticConfig
    prompt: str
    candidates: list[LabeledCandidate]


class JudgeOutcome(BaseModel):
    """What the judge step produced: a verdict and the path, or nothing."""

    verdict: JudgeVerdict | None = None
    path: Literal["judge", "judge_retry", "fallback_judge", "select"] | None = None
    judge_model: str | None = None
    calls: list[CallRecord] = []


def call_record(role: Role, result: ChatResult, member: int | None = None) -> CallRecord:
    """The evidence row of one call."""
    failure = result.failure
    return CallRecord(
        role=role,
        model=result.model,
        member=member,
        ok=failure is None,
        failure_kind=failure.kind if failure else None,
        error=failure.message if failure else None,
        latency_s=result.latency_s,
        queue_s=result.queue_s,
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        cost_usd=result.cost_usd,
        attempts=result.attempts,
        finish_reason=result.finish_reason,
    )


async def generate(task: GenerateTask, model: ChatModel, answer_format: str = "") -> Candidate:
    """Ask one panel member; a failure is returned as a failed candidate."""
    request = ChatRequest(
        messages=generator_messages(task.prompt, task.context, answer_format),
        temperature=task.spec.temperature,
        seed=task.spec.seed,
        max_tokens=task.spec.max_tokens,
    )
    with traced_role("panel"):
        result = await model.chat(request)
    return Candidate(
        member=task.member,
        model=task.spec.model,
        text=result.text,
        failure=result.failure,
        call=call_record("panel", result, task.member),
    )


async def critique(task: CritiqueTask, model: ChatModel) -> Critique:
    """Ask one critic to review the anonymized candidates."""
    request = ChatRequest(
        messages=critic_messages(task.prompt, task.candidates),
        temperature=task.spec.temperature,
        json_schema=CRITIC_SCHEMA,
        schema_name="critique",
    )
    with traced_role("critic"):
        result = await model.chat(request)
    labels = {c.label for c in task.candidates}
    reviews: list[Review] = []
    if result.ok:
        try:
            parsed = [Review.model_validate(r) for r in result.parsed["reviews"]]
            reviews = [r for r in parsed if r.label in labels]
        except (ValidationError, KeyError, TypeError):
            result = _mismatch(result, "critic reviews do not match the schema")
    return Critique(
        critic=task.spec.model,
        index=task.index,
        reviews=reviews,
        call=call_record("critic", result),
    )


def _mismatch(result: ChatResult, message: str) -> ChatResult:
    failure = CallFailure(model=result.model, kind="schema_mismatch", message=message)
    return result.model_copy(update={"failure": failure})


def parse_verdict(inp: JudgeInput, result: ChatResult) -> JudgeVerdict | str:
    """The validated verdict, or why it is not valid."""
    if not result.ok:
        return result.failure.message if result.failure else "failed"
    data = result.parsed
    if not isinstance(data, dict):
        return "the judge did not return a JSON object"
    labels = {c.label: c.text for c in inp.candidates}
    try:
        analysis = Analysis.model_validate(data)
        scores = [LabelScore.model_validate(s) for s in data.get("scores", [])]
    except ValidationError as exc:
        return f"judge output does not match the schema: {exc.errors()[0]['msg']}"
    scores = [s for s in scores if s.label in labels]
    goal: GoalAssessment | None = None
    if inp.goal:
        try:
            goal = GoalAssessment.model_validate(data)
        except ValidationError as exc:
            return f"goal assessment does not match the schema: {exc.errors()[0]['msg']}"
    if inp.mode == "select":
        selected = data.get("selected")
        if selected not in labels:
            return f"the judge selected an unknown label {selected!r}"
        return JudgeVerdict(
            analysis=analysis,
            scores=scores,
            final_answer=labels[selected],
            selected=selected,
            goal=goal,
        )
    final = str(data.get("final_answer") or "").strip()
    if not final:
        return "the judge's final_answer is empty"
    return JudgeVerdict(analysis=analysis, scores=scores, final_answer=final, goal=goal)


async def judge(inp: JudgeInput, deps: JudgeDeps) -> JudgeOutcome:
    """Run the judge on its own input: one retry, then the fallback judge if configured."""
    request = ChatRequest(
        messages=judge_messages(inp),
        temperature=deps.temperature,
        json_schema=judge_schema([c.label for c in inp.candidates], inp.mode, inp.goal),
        schema_name="verdict",
        max_tokens=deps.max_tokens,
    )
    first: Literal["judge", "select"] = "select" if inp.mode == "select" else "judge"
    plan: list[tuple[ChatModel, Literal["judge", "judge_retry", "fallback_judge", "select"]]] = [
        (deps.primary, first),
        (deps.primary, "judge_retry"),
    ]
    if deps.fallback is not None:
        plan.append((deps.fallback, "fallback_judge"))
    calls: list[CallRecord] = []
    streamed = AnswerStream(deps.on_answer) if deps.on_answer and inp.mode == "judge" else None
    for attempt, (model, path) in enumerate(plan):
        # A new seed per attempt, so a retry of a seeded or local model is not a replay.
        attempt_request = request.model_copy(update={"seed": attempt + 1})
        with traced_role("judge"):
            result = await model.chat(attempt_request, streamed.attempt() if streamed else None)
        verdict = parse_verdict(inp, result)
        if isinstance(verdict, str) and result.ok:
            result = _mismatch(result, verdict)
        calls.append(call_record("judge", result))
        if isinstance(verdict, JudgeVerdict):
            return JudgeOutcome(verdict=verdict, path=path, judge_model=model.spec, calls=calls)
    return JudgeOutcome(calls=calls)
