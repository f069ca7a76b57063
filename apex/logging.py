"""Structured logging: structlog with secret redaction always first in the chain."""

from __future__ import annotations

import logging
import sys
from typing import TextIO, cast

import structlog

from apex.redact import redact_processor


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at the moment of writing (a stream bound once would outlive a
    redirection, and writing to it once closed would kill the thread that logs)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "WARNING", *, json: bool = False) -> None:
    """Send APEX's structured logs to stderr at ``level``; keys are always redacted."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=False,
    )


if not structlog.is_configured():  # the application's own configuration wins
    configure_logging()


def get_logger(name: str = "apex") -> structlog.typing.FilteringBoundLogger:
    """The APEX logger; every event passes through the redaction processor."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
