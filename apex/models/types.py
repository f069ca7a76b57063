"""Value objects of a model call: the request, its usage, and its result or typed failure."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from apex import errors
from apex.types import Role

FailureKind = Literal[
    "timeout",
    "rate_limited",
    "http_error",
    "connection",
    "malformed_response",
    "empty",
    "refusal",
    "schema_mismatch",
    "bad_request",
]
"""Every way a model call can fail; each becomes an evidence row, except ``bad_request``: a
request the provider refused as the caller's error (HTTP 400, 413, 422: a prompt longer than the
context, a bad argument) says nothing about the model and is never evidence against it."""

FAILURE_KINDS: tuple[FailureKind, ...] = (
    "timeout",
    "rate_limited",
    "http_error",
    "connection",
    "malformed_response",
    "empty",
    "refusal",
    "schema_mismatch",
    "bad_request",
)


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    """Who speaks."""
    content: str
    """What is said."""


class ChatRequest(BaseModel):
    """What a caller asks of one model."""

    messages: list[Message]
    """The conversation, oldest first."""
    temperature: float | None = None
    """Sampling temperature; the provider's default when None."""
    seed: int | None = None
    """Sampling seed, where the provider supports one."""
    max_tokens: int | None = None
    """Upper bound on generated tokens."""
    json_schema: dict[str, Any] | None = None
    """When set, the answer must be JSON matching this schema (see ``structured``)."""
    schema_name: str = "answer"
    """Name sent with ``json_schema`` in ``response_format``."""
    timeout_s: float | None = None
    """Per-call timeout overriding the provider's."""

    @classmethod
    def of(cls, prompt: str, *, system: str | None = None, **kwargs: Any) -> ChatRequest:
        """A request with one user message (and an optional system message)."""
        messages = [Message(role="system", content=system)] if system else []
        messages.append(Message(role="user", content=prompt))
        return cls(messages=messages, **kwargs)


class Usage(BaseModel):
    """Token counts as the provider reported them (None where it did not)."""

    prompt_tokens: int | None = None
    """Tokens in the prompt."""
    completion_tokens: int | None = None
    """Tokens generated."""

    @property
    def total_tokens(self) -> int | None:
        """Prompt plus completion tokens, when both are known."""
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens


class CallFailure(BaseModel):
    """A typed failure of one model call; recorded as evidence, raised on request."""

    model: str
    """The model spec, ``provider:model``."""
    kind: FailureKind
    """Which way the call failed."""
    message: str
    """One line saying what happened (never contains a key)."""
    status: int | None = None
    """HTTP status for ``http_error`` and ``rate_limited``."""

    def to_exception(self) -> errors.ModelCallError:
        """The most specific APEX exception for this failure."""
        return _EXCEPTION_BY_KIND[self.kind](self)


_EXCEPTION_BY_KIND: dict[FailureKind, type[errors.ModelCallError]] = {
    "timeout": errors.CallTimeout,
    "rate_limited": errors.RateLimited,
    "http_error": errors.HTTPStatusFailure,
    "connection": errors.ConnectionFailure,
    "malformed_response": errors.MalformedResponse,
    "empty": errors.EmptyResponse,
    "refusal": errors.RefusalResponse,
    "schema_mismatch": errors.SchemaMismatch,
    "bad_request": errors.HTTPStatusFailure,
}


class ChatResult(BaseModel):
    """The outcome of one model call: an answer, or a failure, never both."""

    model: str
    """The model spec, ``provider:model``."""
    text: str = ""
    """The answer text ('' on failure)."""
    parsed: Any = None
    """The parsed JSON object when a schema was requested and matched."""
    failure: CallFailure | None = None
    """Why the call failed, or None."""
    usage: Usage = Field(default_factory=Usage)
    """Token usage as reported."""
    cost_usd: float | None = None
    """Reported cost, else priced from the workflow's table, else None: never invented."""
    latency_s: float = 0.0
    """Wall time of the call, retries and waits included."""
    queue_s: float = 0.0
    """Of ``latency_s``, the time spent waiting for a slot of the provider's concurrency limit
    (``local`` runs one call at a time: the others wait here); the rest is the call itself."""
    attempts: int = 1
    """How many HTTP attempts were made."""
    finish_reason: str | None = None
    """The provider's finish reason."""
    response_model: str | None = None
    """The model name the provider answered with (``gen_ai.response.model`` in traces)."""

    @property
    def ok(self) -> bool:
        """True when the call produced an answer."""
        return self.failure is None

    def raise_for_failure(self) -> ChatResult:
        """Return self, or raise the typed exception of its failure."""
        if self.failure is not None:
            raise self.failure.to_exception()
        return self


class CallRecord(BaseModel):
    """One model call as a cycle records it: who asked (role, panel member) and how it ended."""

    role: Role
    """Which part of the cycle made it."""
    model: str
    """``provider:model``."""
    member: int | None = None
    """Panel index for panel calls."""
    ok: bool
    """Whether it produced a usable answer."""
    failure_kind: FailureKind | None = None
    """Typed failure, when it failed."""
    error: str | None = None
    """One-line failure message."""
    latency_s: float = 0.0
    """Wall time, retries included."""
    queue_s: float = 0.0
    """Of ``latency_s``, the wait for the provider's concurrency slot (the rest is the call)."""
    prompt_tokens: int | None = None
    """Prompt tokens as reported."""
    completion_tokens: int | None = None
    """Completion tokens as reported."""
    cost_usd: float | None = None
    """Reported or priced cost; None when unknown."""
    attempts: int = 1
    """HTTP attempts."""
    finish_reason: str | None = None
    """The provider's finish reason (``length``: the answer was cut off at ``max_tokens``)."""
