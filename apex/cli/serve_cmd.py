"""``apex serve``: the OpenAI-compatible endpoint and the goals API, on uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from apex.cli.common import console, fail, guarded
from apex.logging import configure_logging
from apex.server.config import (
    DEFAULT_DEADLINE_S,
    DEFAULT_GRACE_S,
    DEFAULT_HOST,
    DEFAULT_KEEPALIVE_S,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_PORT,
    SERVER_KEYS_ENV,
)


@guarded
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = DEFAULT_HOST,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port (0: any free one).")
    ] = DEFAULT_PORT,
    db: Annotated[
        str | None, typer.Option(help="Evidence store URL (else APEX_DB, else default).")
    ] = None,
    workflows: Annotated[
        Path | None, typer.Option(help="Serve every *.toml here as apex/<name>.")
    ] = None,
    insecure: Annotated[
        bool, typer.Option(help="Allow a non-loopback --host without APEX_SERVER_KEYS.")
    ] = False,
    max_concurrent: Annotated[
        int, typer.Option(min=1, help="Cycles in flight at once; the rest get 429.")
    ] = DEFAULT_MAX_CONCURRENT,
    deadline_s: Annotated[
        float, typer.Option(min=0.1, help="Cancel a request's cycle after this long (504).")
    ] = DEFAULT_DEADLINE_S,
    max_body_bytes: Annotated[
        int, typer.Option(min=1, help="Largest request body (413 beyond).")
    ] = DEFAULT_MAX_BODY_BYTES,
    keepalive_s: Annotated[
        float, typer.Option(min=0.05, help="Seconds between SSE keep-alives.")
    ] = DEFAULT_KEEPALIVE_S,
    grace_s: Annotated[
        float, typer.Option(min=0, help="On SIGTERM, time for in-flight requests to finish.")
    ] = DEFAULT_GRACE_S,
    allow_command_verifiers: Annotated[
        bool, typer.Option(help="Accept goals whose verifier is a shell command.")
    ] = False,
    resume_goals: Annotated[
        bool, typer.Option(help="Resume the store's unfinished goals at start.")
    ] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "warning",
    access_log: Annotated[bool, typer.Option(help="Log every request line.")] = False,
) -> None:
    """Serve POST /v1/chat/completions (apex/<workflow> or provider:model), the goals API,
    feedback and evidence; OpenAPI docs at /docs. Keys: APEX_SERVER_KEYS (comma-separated)."""
    from apex.server import ServerConfig, bind, keys_from_env, serve  # fastapi: only when serving

    level = log_level.lower()
    if level not in ("debug", "info", "warning", "error"):
        fail(f"--log-level {log_level}: use debug, info, warning or error")
    configure_logging(level.upper())
    config = ServerConfig(
        host=host,
        port=port,
        db=db,
        workflows_dir=workflows,
        keys=keys_from_env(),
        insecure=insecure,
        max_body_bytes=max_body_bytes,
        max_concurrent=max_concurrent,
        deadline_s=deadline_s,
        keepalive_s=keepalive_s,
        grace_s=grace_s,
        allow_command_verifiers=allow_command_verifiers,
        resume_goals=resume_goals,
    )
    refused = config.check()
    if refused is not None:
        fail(refused)
    try:
        sock = bind(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    bound = sock.getsockname()[1]
    where = f"[{host}]" if ":" in host else host
    if config.keys:
        auth = f"{len(config.keys)} bearer key(s) from {SERVER_KEYS_ENV}"
    elif config.insecure:
        auth = f"no {SERVER_KEYS_ENV}: NO authentication on a non-loopback host (--insecure)"
    else:
        auth = f"no {SERVER_KEYS_ENV}: no authentication, so bound to loopback only"

    def ready() -> None:
        console.print(
            f"apex serve: http://{where}:{bound}/v1 · docs http://{where}:{bound}/docs",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        console.print(f"auth: {auth}", markup=False, highlight=False, soft_wrap=True)

    serve(config, sock, log_level=level, access_log=access_log, on_ready=ready)
