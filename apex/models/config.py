"""The value objects that configure model access: providers, prices and client settings.

``models/`` is configured by these alone; a workflow file builds them (``Workflow.client_settings``)
but nothing here knows what a workflow is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_TIMEOUT_S = 60.0
"""Seconds a call may take, retries excluded."""
DEFAULT_MAX_RETRIES = 3
"""Retries of 429, 5xx and connection errors."""
DEFAULT_CONCURRENCY = 8
"""Calls in flight to one provider."""
DEFAULT_MAX_TOKENS = 512
"""Token cap of a call that sets none."""


class ProviderConfig(BaseModel):
    """A named OpenAI-compatible provider (built in, or declared in a workflow)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    """Base URL ending before ``/chat/completions``, e.g. ``http://127.0.0.1:8765/v1``."""
    api_key_env: str | None = None
    """Environment variable holding the key; None for keyless servers."""
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1)
    """At most this many calls in flight to this provider."""
    json_schema: bool = True
    """Whether it accepts ``response_format`` with a JSON schema (else parse-and-repair)."""


class Price(BaseModel):
    """Declared price of a model, used only when the provider reports no cost."""

    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(ge=0)
    """USD per million prompt tokens."""
    output_per_mtok: float = Field(ge=0)
    """USD per million completion tokens."""


@dataclass(frozen=True)
class ClientSettings:
    """Everything a :class:`~apex.models.client.ModelClient` is configured by."""

    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    """Providers in addition to (or replacing) the built-in ones, by name."""
    prices: Mapping[str, Price] = field(default_factory=dict)
    """Declared prices by model spec."""
    timeout_s: float = DEFAULT_TIMEOUT_S
    """Per-call timeout."""
    max_retries: int = DEFAULT_MAX_RETRIES
    """Retries on 429, 5xx and connection errors."""
    max_tokens: int = DEFAULT_MAX_TOKENS
    """Token cap of a request that sets none."""


DEFAULT_SETTINGS = ClientSettings()
"""Built-in providers only, default limits."""
