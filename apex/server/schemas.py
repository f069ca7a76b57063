"""Request bodies of the HTTP API, as pydantic models (they are also the OpenAPI schema).

Chat requests follow OpenAI's chat-completions body; fields APEX does not use are accepted and
ignored (``top_p``, ``user``...), fields it cannot honour are refused (``tools``, ``n`` > 1).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from apex.goals.types import DEFAULT_BLOCKED_AFTER, DEFAULT_MAX_CYCLES
from apex.goals.verify import VerifierSpec


class TextPart(BaseModel):
    """A content part; only ``text`` parts are supported."""

    model_config = ConfigDict(extra="allow")

    type: str
    """``text`` (others are refused)."""
    text: str | None = None
    """The text."""


class ChatMessage(BaseModel):
    """One message of the conversation."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    """Who speaks (``developer`` is read as ``system``; tool messages are refused)."""
    content: str | list[TextPart] | None = None
    """Text, or a list of text parts."""


class StreamOptions(BaseModel):
    """``stream_options``."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool = False
    """Send a last chunk with the usage of every call."""


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``: OpenAI's body plus the fusion overrides."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(examples=["apex/local"])
    """``apex/<workflow>`` for a fusion cycle, or ``provider:model`` for one call."""
    messages: list[ChatMessage] = Field(min_length=1)
    """The conversation; the last message is the user's."""
    stream: bool = False
    """Answer as ``text/event-stream`` chunks."""
    stream_options: StreamOptions | None = None
    """``include_usage`` adds a final usage chunk."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    """Pass-through: sent as is. Fusion: each panel member without its own temperature."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Pass-through: sent as is. Fusion: caps each panel member's answer."""
    max_completion_tokens: int | None = Field(default=None, ge=1)
    """Same as ``max_tokens`` (OpenAI's newer name)."""
    seed: int | None = None
    """Pass-through: sent as is. Fusion: seeds the label shuffle, and member i's sampling
    (seed + i) where the member sets none."""
    n: int | None = Field(default=None, ge=1)
    """Only 1 is supported."""
    metadata: dict[str, Any] | None = None
    """``category``, ``expected`` (ground truth) and ``n_options`` feed the evidence."""
    fusion: dict[str, Any] | None = None
    """LiteLLM's shape: ``{"models": [...], "judge": {"model": ...}, "critics": [...]}``."""
    plugins: list[dict[str, Any]] | None = None
    """OpenRouter's shape: ``[{"id": "fusion", "analysis_models": [...], "model": ...}]``."""
    tools: list[Any] | None = None
    """Refused: tools are not supported."""
    response_format: dict[str, Any] | None = None
    """Only ``{"type": "text"}`` is supported."""


class LimitsBody(BaseModel):
    """A goal's limits."""

    model_config = ConfigDict(extra="forbid")

    max_cycles: int | None = Field(default=DEFAULT_MAX_CYCLES, ge=1)
    """At most this many cycles."""
    budget_usd: float | None = Field(default=None, gt=0)
    """Spend at most this (USD)."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Use at most this many tokens."""
    deadline: datetime | None = None
    """Stop once this moment has passed (ISO 8601; UTC when no offset is given)."""


class GoalRequest(BaseModel):
    """``POST /v1/goals``."""

    model_config = ConfigDict(extra="forbid")

    objective: str = Field(min_length=1)
    """What to achieve."""
    criteria: str = ""
    """How to tell it is achieved."""
    workflow: str = "local"
    """A served workflow, ``name`` or ``apex/name``."""
    category: str | None = None
    """Task category for evidence (default: the workflow's)."""
    verifier: VerifierSpec | None = None
    """``regex`` or ``exact`` match; ``command`` only when the server allows it."""
    limits: LimitsBody = Field(default_factory=LimitsBody)
    """Stop conditions."""
    blocked_after: int = Field(default=DEFAULT_BLOCKED_AFTER, ge=1)
    """Blocked after the same blocker this many cycles in a row."""
    n_options: int | None = Field(default=None, ge=2)
    """The objective's number of options, when it is a choice."""


class FeedbackRequest(BaseModel):
    """``POST /v1/runs/{id}/feedback``: whether the run's answer was right, or the answer."""

    model_config = ConfigDict(extra="forbid")

    correct: bool | None = None
    """Whether the run's final answer was right."""
    answer: str | None = None
    """The right answer, when known."""
