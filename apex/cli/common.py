"""Shared CLI plumbing: running coroutines, one-line errors, the console."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console

from apex.cli.exits import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_NOT_RECORDED,
    EXIT_SIGINT,
    EXIT_UNREACHABLE,
)
from apex.errors import ApexError, ConfigError, ConnectionFailure
from apex.redact import redact, redact_known

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL or SQLite path (default: APEX_DB, the workflow's db, "
        "$APEX_HOME/apex.db).",
    ),
]
"""``--db``: the store a command opens."""
StoreWorkflow = Annotated[
    str | None,
    typer.Option("--workflow", "-w", help="Workflow whose `db` key names the database."),
]
"""``--workflow`` where it only names the store (its ``db`` key)."""

T = TypeVar("T")
P = ParamSpec("P")
console = Console()
__all__ = ["EXIT_NOT_RECORDED", "bad_input", "console", "error_exit", "fail", "guarded", "run"]


def error_exit(exc: ApexError) -> int:
    """The exit status of a command ended by ``exc`` (see :mod:`apex.cli.exits`)."""
    if isinstance(exc, ConfigError):
        return EXIT_BAD_INPUT
    if isinstance(exc, ConnectionFailure):
        return EXIT_UNREACHABLE
    return EXIT_FAILED


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print a one-line error to stderr (never wrapped, keys redacted) and exit."""
    line = " ".join(redact(message).split())
    sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


def bad_input(message: str) -> NoReturn:
    """:func:`fail` with the bad-input status: an option, argument or file is wrong."""
    fail(message, EXIT_BAD_INPUT)


def guarded(command: Callable[P, T]) -> Callable[P, T]:
    """Wrap a CLI command so that any APEX error becomes a one-line message and its exit
    status, and Ctrl-C exit 130 (never a traceback; the entry point says "interrupted")."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except ApexError as exc:
            fail(str(exc), error_exit(exc))
        except KeyboardInterrupt:
            raise typer.Exit(EXIT_SIGINT) from None

    return wrapper


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, turning APEX errors into one-line messages."""
    try:
        return asyncio.run(coro)
    except ApexError as exc:
        fail(str(exc), error_exit(exc))
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_SIGINT) from None


def print_json(data: Any) -> None:
    """Print one JSON document to stdout (registered keys masked)."""
    print_line(json.dumps(data, indent=2, default=str))


def print_line(text: str) -> None:
    """Print one line (or JSON document) to stdout as it is, registered keys masked."""
    sys.stdout.write(redact_known(text) + "\n")
    sys.stdout.flush()
