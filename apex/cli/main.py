"""The ``apex`` application: every command group, each imported only when it runs.

``apex --version`` and ``apex --help`` import no command module (their help comes from the
table below), and a command imports only its own module; the stack behind it (the graph, the
store, the client) is imported inside the command. Ctrl-C at any moment, start-up included,
ends in one line and exit 130, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from apex.cli.exits import EXIT_SIGINT

COMMANDS: dict[str, tuple[str, str, str]] = {
    "models": ("apex.cli.models_cmd", "models", "Configured providers, each checked."),
    "ask": ("apex.cli.models_cmd", "ask", "One call to one model."),
    "fuse": ("apex.cli.fuse_cmd", "fuse_command", "Fuse a panel's answers (or a JSONL batch)."),
    "runs": ("apex.cli.runs_cmd", "runs", "Recorded runs, newest first (ids for feedback)."),
    "db": ("apex.cli.db_cmd", "app", "The evidence store: migrations, checks, retention."),
    "feedback": ("apex.cli.feedback_cmd", "feedback", "Ground truth for a recorded run."),
    "replay": ("apex.cli.replay_cmd", "replay", "The policy replayed over recorded answers."),
    "evidence": ("apex.cli.evidence_cmd", "evidence", "Leaderboard per model and role."),
    "goal": ("apex.cli.goal_cmd", "app", "Goal loops: cycles until met or a limit is reached."),
    "schedule": ("apex.cli.schedule_cmd", "app", "Goals fired on a schedule."),
    "worker": ("apex.cli.worker_cmd", "worker", "Run queued and scheduled goals."),
    "status": ("apex.cli.status_cmd", "status_command", "Workers, queue and schedules."),
    "serve": ("apex.cli.serve_cmd", "serve_command", "OpenAI-compatible endpoint and goals API."),
    "report": ("apex.cli.report_cmd", "report", "A goal, a run or a period: tables, JSON, HTML."),
    "ui": ("apex.cli.ui_cmd", "ui", "The read-only dashboard: goals, cycles, runs, evidence."),
}
"""Command name -> (module, attribute, one-line help). A Typer attribute is a command group."""


def load_command(name: str) -> Any:
    """The click command of ``name``, importing its module now."""
    module, attribute, _ = COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        command = typer.main.get_command(target)
    else:
        single = typer.Typer(pretty_exceptions_enable=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """A group whose commands are imported when one is run (or its own help is asked for)."""

    listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        """Every command, in the table's order."""
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command; a stub carrying only its help while the group's help is printed."""
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        if self.listing:
            return TyperCommand(name=cmd_name, help=COMMANDS[cmd_name][2])
        command = load_command(cmd_name)
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """The group's help, from the table: no command module is imported for it."""
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


app = typer.Typer(
    name="apex",
    cls=LazyGroup,
    help="APEX: a parallel panel of models, critics and a blind judge that learns from evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("apex-fusion")
        except PackageNotFoundError:  # a source tree that is not installed
            number = "0.0.0"
        typer.echo(f"apex {number}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    otel: bool = typer.Option(
        False, "--otel", help="Send OpenTelemetry traces (OTLP; also on with OTEL_* variables)."
    ),
    otel_content: bool = typer.Option(
        False, "--otel-content", help="Put message content in traces (off by default)."
    ),
) -> None:
    """APEX command line."""
    from apex.errors import ConfigError
    from apex.telemetry.setup import setup_from_env

    try:
        setup_from_env(otel, content=otel_content or None)
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(2) from None


def _interrupted() -> NoReturn:
    """Leave at once after Ctrl-C: the interpreter's teardown (collecting a large heap) would
    take longer than the user should wait; every store write is a committed transaction."""
    sys.stdout.flush()
    sys.stderr.write("error: interrupted\n")
    sys.stderr.flush()
    os._exit(EXIT_SIGINT)


def main() -> None:
    """Console-script entry point; every Ctrl-C ends here, in one line and exit 130."""
    try:
        app()
    except KeyboardInterrupt:  # before typer's own handling (the root callback's start-up)
        _interrupted()
    except SystemExit as exc:  # a command's guard, or typer's silent Exit(130) during start-up
        if exc.code == EXIT_SIGINT:
            _interrupted()
        raise


if __name__ == "__main__":
    main()
