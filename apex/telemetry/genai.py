"""The GenAI semantic conventions APEX follows, as names: one place to move to a newer release."""

from __future__ import annotations

import os
from collections.abc import Sequence

SEMCONV_VERSION = "1.37.0"
"""The OpenTelemetry semantic conventions release whose GenAI attributes APEX writes (the first
with ``gen_ai.provider.name`` and the structured ``gen_ai.input.messages``)."""
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
"""The schema URL set on APEX's tracer."""

CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""The variable OpenTelemetry's GenAI instrumentations read to record message content."""

AttributeValue = (
    str | bool | int | float | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]
)
"""What an OpenTelemetry attribute may hold."""

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_SEED = "gen_ai.request.seed"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
OUTPUT_TYPE = "gen_ai.output.type"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
AGENT_NAME = "gen_ai.agent.name"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

APEX_ROLE = "apex.role"
APEX_RUN_ID = "apex.run_id"
APEX_GOAL_ID = "apex.goal_id"
APEX_MODEL = "apex.model"
APEX_COST = "apex.cost_usd"
APEX_ATTEMPTS = "apex.attempts"


def env_flag(name: str) -> bool:
    """Whether environment variable ``name`` says yes (``true``, ``1``, ``yes``)."""
    return os.environ.get(name, "").strip().lower() in ("true", "1", "yes", "on")
