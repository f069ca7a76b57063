"""Model access: one async httpx client for OpenAI-compatible chat completions."""

from apex.models.client import BoundModel, ChatModel, ModelClient
from apex.models.providers import BLOCK_REMOTE_ENV, Provider, resolve_provider, split_spec
from apex.models.retry import RetryPolicy, parse_retry_after
from apex.models.types import (
    FAILURE_KINDS,
    CallFailure,
    ChatRequest,
    ChatResult,
    FailureKind,
    Message,
    Usage,
)

__all__ = [
    "BLOCK_REMOTE_ENV",
    "FAILURE_KINDS",
    "BoundModel",
    "CallFailure",
    "ChatModel",
    "ChatRequest",
    "ChatResult",
    "FailureKind",
    "Message",
    "ModelClient",
    "Provider",
    "RetryPolicy",
    "Usage",
    "parse_retry_after",
    "resolve_provider",
    "split_spec",
]
