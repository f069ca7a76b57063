"""Shared CLI plumbing: running coroutines, one-line errors, the console."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console

from apex.errors import ApexError
from apex.redact import redact, redact_known

T = TypeVar("T")
P = ParamSpec("P")
console = Console()
EXIT_NOT_RECORDED = 3
"""Exit status of a command that printed its answer but could not record the run (spooled)."""


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error to stderr (never wrapped, keys redacted) and exit."""
    line = " ".join(redact(message).split())
    sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


def guarded(command: Callable[P, T]) -> Callable[P, T]:
    """Wrap a CLI command so that any APEX error becomes a one-line message and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except ApexError as exc:
            fail(str(exc))

    return wrapper


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, turning APEX errors into one-line messages."""
    try:
        return asyncio.run(coro)
    except ApexError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", code=130)


def print_json(data: Any) -> None:
    """Print one JSON document to stdout (registered keys masked)."""
    print_line(json.dumps(data, indent=2, default=str))


def print_line(text: str) -> None:
    """Print one line (or JSON document) to stdout as it is, registered keys masked."""
    sys.stdout.write(redact_known(text) + "\n")
    sys.stdout.flush()
