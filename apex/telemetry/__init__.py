"""OpenTelemetry traces of model calls, fusion cycles and goal cycles.

Spans follow the OpenTelemetry GenAI semantic conventions, version :data:`SEMCONV_VERSION`
(``gen_ai.provider.name``, ``gen_ai.input.messages`` / ``gen_ai.output.messages`` as in that
release). One trace shows a whole cycle::

    goal_cycle {n}                 (a goal's cycle; each cycle is its own trace)
      fusion {workflow}            (the fusion cycle: panel, critics, judge)
        chat {gen_ai.request.model}   one per model call, apex.role = panel | critic | judge

Tracing is off by default and then costs nothing: no span is made, and APEX does not import
OpenTelemetry for it. It is on when a tracer provider is given to :func:`configure`, when the
application installed a global SDK provider, or from the command line (``apex --otel`` or the
standard ``OTEL_*`` variables, see :mod:`apex.telemetry.setup`). Message content is recorded only on
opt-in (``configure(content=True)``, ``--otel-content`` or
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``), redacted like every model text.

Spans that open and close in different graph nodes (a goal cycle opens in ``plan`` and closes in
``decide``) live in a :class:`Scope`: one per goal run or fusion call, shared by every task of it
through a context variable, so a model call finds its parent, run id and goal id there.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apex.telemetry.genai import (
    CONTENT_ENV,
    SCHEMA_URL,
    SEMCONV_VERSION,
    AttributeValue,
    env_flag,
)

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider

TRACER_NAME = "apex"
"""The instrumentation scope name of APEX's spans."""


@dataclass
class _Config:
    provider: TracerProvider | None = None
    tracer: Tracer | None = None
    content: bool | None = None
    cached: tuple[object, Tracer] | None = None


_config = _Config()


def configure(provider: TracerProvider | None = None, *, content: bool | None = None) -> None:
    """Trace to ``provider`` (None: the global provider, when the application installed one);
    ``content`` records message content (None: as ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_
    MESSAGE_CONTENT`` says)."""
    _config.provider = provider
    _config.tracer = (
        provider.get_tracer(TRACER_NAME, schema_url=SCHEMA_URL) if provider is not None else None
    )
    _config.content = content
    _config.cached = None


def reset() -> None:
    """Back to the defaults: the global provider if one is installed, content off."""
    configure(None)


def tracer() -> Tracer | None:
    """The tracer spans go to, or None when tracing is off (the check costs a dict lookup)."""
    if _config.tracer is not None:
        return _config.tracer
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:  # nobody imported OpenTelemetry: nobody can have installed a provider
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    cached = _config.cached
    if cached is None or cached[0] is not provider:
        cached = (provider, provider.get_tracer(TRACER_NAME, schema_url=SCHEMA_URL))
        _config.cached = cached
    return cached[1]


def enabled() -> bool:
    """Whether spans are being made."""
    return tracer() is not None


def capture_content() -> bool:
    """Whether message content goes into spans (opt-in)."""
    if _config.content is not None:
        return _config.content
    return env_flag(CONTENT_ENV)


@dataclass
class Scope:
    """The spans of one goal run or fusion call that outlive a single graph node.

    Shared (not copied) by every task of the run; ``attributes`` (``apex.run_id``,
    ``apex.goal_id``) go on every span made under it.
    """

    tracer: Tracer
    parent: Context | None
    """The context new spans hang under (the innermost open span's)."""
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    open: dict[str, tuple[Span, Context | None, dict[str, AttributeValue]]] = field(
        default_factory=dict
    )
    """Open spans by key, with the parent and the attributes to restore when each ends."""


_SCOPE: ContextVar[Scope | None] = ContextVar("apex_telemetry_scope", default=None)
_ROLE: ContextVar[str | None] = ContextVar("apex_telemetry_role", default=None)


def current_scope() -> Scope | None:
    """The scope of the run this task belongs to, if tracing."""
    return _SCOPE.get()


@contextlib.contextmanager
def scope(**attributes: AttributeValue) -> Iterator[Scope | None]:
    """A new scope for one run (``goal_id=...`` becomes ``apex.goal_id``); None when off."""
    found = tracer()
    if found is None:
        yield None
        return
    from opentelemetry import context as otel_context

    made = Scope(
        tracer=found,
        parent=otel_context.get_current(),
        attributes={f"apex.{k}": v for k, v in attributes.items() if v is not None},
    )
    token = _SCOPE.set(made)
    try:
        yield made
    finally:
        _SCOPE.reset(token)
        for key in list(made.open):  # a run that stopped mid-cycle: end what it left open
            close_span(key, {"apex.incomplete": True}, scope_=made)


def open_span(
    key: str,
    name: str,
    attributes: Mapping[str, AttributeValue | None] | None = None,
    *,
    bind: Mapping[str, AttributeValue] | None = None,
) -> None:
    """Start span ``name`` under the scope's innermost open span, kept as ``key`` until
    :func:`close_span`; ``bind`` attributes also go on every span started inside it."""
    made = _SCOPE.get()
    if made is None:
        return
    if key in made.open:  # a replayed node: the earlier attempt's span ends here
        close_span(key, {"apex.incomplete": True}, scope_=made)
    from opentelemetry import trace

    saved = dict(made.attributes)
    made.attributes.update(bind or {})
    span = made.tracer.start_span(
        name, context=made.parent, attributes=_clean({**made.attributes, **(attributes or {})})
    )
    made.open[key] = (span, made.parent, saved)
    made.parent = trace.set_span_in_context(span, made.parent)


def close_span(
    key: str,
    attributes: Mapping[str, AttributeValue | None] | None = None,
    *,
    error: str | None = None,
    scope_: Scope | None = None,
) -> None:
    """End the span kept as ``key`` (if open) with ``attributes``; ``error`` marks it failed."""
    made = scope_ or _SCOPE.get()
    if made is None or key not in made.open:
        return
    span, parent, saved = made.open.pop(key)
    if attributes:
        span.set_attributes(_clean(attributes))
    if error is not None:
        _fail(span, error)
    span.end()
    made.parent = parent
    made.attributes = saved


@contextlib.contextmanager
def span(
    key: str,
    name: str,
    attributes: Mapping[str, AttributeValue | None] | None = None,
    *,
    bind: Mapping[str, AttributeValue] | None = None,
) -> Iterator[SpanHandle]:
    """:func:`open_span` ... :func:`close_span` around a block, in a scope of its own when the
    caller has none; the handle adds attributes at the end. A no-op when tracing is off."""
    handle = SpanHandle()
    with contextlib.ExitStack() as stack:
        if _SCOPE.get() is None and stack.enter_context(scope()) is None:
            yield handle
            return
        open_span(key, name, attributes, bind=bind)
        try:
            yield handle
        except BaseException as exc:
            close_span(key, handle.attributes, error=type(exc).__name__)
            raise
        close_span(key, handle.attributes, error=handle.error)


@dataclass
class SpanHandle:
    """What a block adds to its span before it ends."""

    attributes: dict[str, AttributeValue | None] = field(default_factory=dict)
    error: str | None = None
    """Set to an ``error.type`` to mark the span failed."""


@contextlib.contextmanager
def role(name: str) -> Iterator[None]:
    """Model calls made inside play ``name`` (``apex.role``: panel, critic or judge)."""
    token = _ROLE.set(name)
    try:
        yield
    finally:
        _ROLE.reset(token)


def current_role() -> str | None:
    """The role bound by :func:`role`, if any."""
    return _ROLE.get()


def _fail(span: Span, error_type: str, message: str | None = None) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, message))


def _clean(attributes: Mapping[str, Any]) -> dict[str, AttributeValue]:
    return {k: v for k, v in attributes.items() if v is not None}


from apex.telemetry.chat import ChatSpan, chat_span  # noqa: E402  (uses the helpers above)

__all__ = [
    "CONTENT_ENV",
    "SEMCONV_VERSION",
    "ChatSpan",
    "Scope",
    "SpanHandle",
    "capture_content",
    "chat_span",
    "close_span",
    "configure",
    "current_role",
    "current_scope",
    "enabled",
    "open_span",
    "reset",
    "role",
    "scope",
    "span",
    "tracer",
]
