"""The ``apex`` application: registers every command group."""

from __future__ import annotations

import sys

import typer

from apex import __version__
from apex.cli import (
    db_cmd,
    evidence_cmd,
    feedback_cmd,
    fuse_cmd,
    goal_cmd,
    models_cmd,
    replay_cmd,
    schedule_cmd,
    serve_cmd,
    status_cmd,
    worker_cmd,
)

app = typer.Typer(
    name="apex",
    help="APEX: a parallel panel of models, critics and a blind judge that learns from evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("models")(models_cmd.models)
app.command("ask")(models_cmd.ask)
app.command("fuse")(fuse_cmd.fuse_command)
app.add_typer(db_cmd.app, name="db")
app.command("feedback")(feedback_cmd.feedback)
app.command("replay")(replay_cmd.replay)
app.command("evidence")(evidence_cmd.evidence)
app.add_typer(goal_cmd.app, name="goal")
app.add_typer(schedule_cmd.app, name="schedule")
app.command("worker")(worker_cmd.worker)
app.command("status")(status_cmd.status_command)
app.command("serve")(serve_cmd.serve_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"apex {__version__}")
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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
