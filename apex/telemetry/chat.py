"""The span of one model call: ``chat {gen_ai.request.model}`` with the GenAI attributes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from apex import telemetry
from apex.redact import redact_known
from apex.telemetry import genai

if TYPE_CHECKING:
    from opentelemetry.trace import Span


class _Failure(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def message(self) -> str: ...


class _Usage(Protocol):
    @property
    def prompt_tokens(self) -> int | None: ...
    @property
    def completion_tokens(self) -> int | None: ...


class CallOutcome(Protocol):
    """What the span reads of a finished call (a ``ChatResult`` is one)."""

    @property
    def text(self) -> str: ...
    @property
    def failure(self) -> _Failure | None: ...
    @property
    def usage(self) -> _Usage: ...
    @property
    def cost_usd(self) -> float | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def finish_reason(self) -> str | None: ...
    @property
    def response_model(self) -> str | None: ...


class ChatSpan:
    """An open model-call span; :meth:`finish` ends it with the call's outcome."""

    def __init__(self, span: Span, content: bool) -> None:
        self._span = span
        self._content = content

    def finish(self, result: CallOutcome) -> None:
        """Record usage, cost, the response model and any typed failure; end the span."""
        span = self._span
        attributes: dict[str, Any] = {
            genai.USAGE_INPUT_TOKENS: result.usage.prompt_tokens,
            genai.USAGE_OUTPUT_TOKENS: result.usage.completion_tokens,
            genai.RESPONSE_MODEL: result.response_model,
            genai.APEX_COST: result.cost_usd,
            genai.APEX_ATTEMPTS: result.attempts,
        }
        if result.finish_reason:
            attributes[genai.RESPONSE_FINISH_REASONS] = [result.finish_reason]
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        if result.failure is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_attribute(genai.ERROR_TYPE, result.failure.kind)
            span.set_status(Status(StatusCode.ERROR, result.failure.message))
        elif self._content:
            output = [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": redact_known(result.text)}],
                    "finish_reason": result.finish_reason or "stop",
                }
            ]
            span.set_attribute(genai.OUTPUT_MESSAGES, json.dumps(output))
        span.end()

    def abandon(self, reason: str) -> None:
        """End the span of a call that never finished (cancelled): ``error.type`` is ``reason``."""
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attribute(genai.ERROR_TYPE, reason)
        self._span.set_status(Status(StatusCode.ERROR, f"the call was {reason}"))
        self._span.end()


def chat_span(
    provider: str, model: str, spec: str, body: Mapping[str, Any], base_url: str
) -> ChatSpan | None:
    """Start the span of a call to ``model`` of ``provider`` with request ``body``; None (and
    nothing done) when tracing is off."""
    tracer = telemetry.tracer()
    if tracer is None:
        return None
    from opentelemetry.trace import SpanKind

    scope = telemetry.current_scope()
    url = urlsplit(base_url)
    attributes: dict[str, Any] = {
        **(scope.attributes if scope is not None else {}),
        genai.OPERATION: "chat",
        genai.PROVIDER: provider,
        genai.REQUEST_MODEL: model,
        genai.APEX_MODEL: spec,
        genai.APEX_ROLE: telemetry.current_role(),
        genai.REQUEST_MAX_TOKENS: body.get("max_tokens"),
        genai.REQUEST_TEMPERATURE: body.get("temperature"),
        genai.REQUEST_SEED: body.get("seed"),
        genai.OUTPUT_TYPE: "json" if "response_format" in body else "text",
        genai.SERVER_ADDRESS: url.hostname,
        genai.SERVER_PORT: url.port,
    }
    content = telemetry.capture_content()
    if content:
        sent = [
            {"role": m["role"], "parts": [{"type": "text", "content": redact_known(m["content"])}]}
            for m in body.get("messages", [])
        ]
        attributes[genai.INPUT_MESSAGES] = json.dumps(sent)
    span = tracer.start_span(
        f"chat {model}",
        context=scope.parent if scope is not None else None,
        kind=SpanKind.CLIENT,
        attributes={k: v for k, v in attributes.items() if v is not None},
    )
    return ChatSpan(span, content)
