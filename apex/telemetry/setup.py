"""Turning tracing on for a process: the OpenTelemetry SDK with an OTLP (or console) exporter.

The command line calls :func:`setup_from_env` once: tracing goes on with ``--otel`` or when the
standard variables ask for an exporter (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, or ``OTEL_TRACES_EXPORTER`` other than ``none``), and
stays off with ``OTEL_SDK_DISABLED=true``. The SDK and the exporter are the ``otel`` extra
(``pip install 'apex-fusion[otel]'``); everything else about them (service name, headers,
endpoint, batching) is read by the SDK from its own ``OTEL_*`` variables.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from apex import telemetry
from apex.errors import ConfigError
from apex.telemetry.genai import env_flag

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

EXPORTER_ENVS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)
"""Variables whose presence turns tracing on (an OTLP endpoint to send to)."""
DEFAULT_SERVICE_NAME = "apex"
"""``service.name`` unless ``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES`` say otherwise."""


def wanted(flag: bool = False) -> bool:
    """Whether tracing should be on: ``flag`` (``--otel``) or the ``OTEL_*`` variables."""
    if env_flag("OTEL_SDK_DISABLED"):
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return flag
    return flag or bool(exporter) or any(os.environ.get(name) for name in EXPORTER_ENVS)


def setup_from_env(flag: bool = False, *, content: bool | None = None) -> TracerProvider | None:
    """Install the SDK's tracer provider when :func:`wanted`; the provider, or None (off)."""
    if not wanted(flag):
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        raise ConfigError(
            "tracing needs the OpenTelemetry SDK: pip install 'apex-fusion[otel]'"
        ) from None
    service = os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
    resource = Resource.create({SERVICE_NAME: service})  # + OTEL_RESOURCE_ATTRIBUTES
    provider = TracerProvider(resource=resource)
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    for name in (n.strip() for n in names.split(",")):
        if name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name in ("otlp", "none"):
            provider.add_span_processor(BatchSpanProcessor(_otlp_exporter()))
        else:
            raise ConfigError(
                f"OTEL_TRACES_EXPORTER={name!r} is not supported: use otlp or console"
            )
    trace.set_tracer_provider(provider)
    telemetry.configure(provider, content=content)
    return provider


def _otlp_exporter() -> SpanExporter:
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol.strip().lower() == "grpc":
        raise ConfigError(
            "OTLP over gRPC is not bundled: set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
        )
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ConfigError("the OTLP exporter is missing: pip install 'apex-fusion[otel]'") from None
    return OTLPSpanExporter()
