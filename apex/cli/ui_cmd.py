"""``apex ui``: the read-only dashboard over one store, on its own port."""

from __future__ import annotations

from typing import Annotated

import typer

from apex.cli.common import console, guarded

DEFAULT_UI_PORT = 8765
"""The dashboard's port unless ``--port`` says otherwise."""


@guarded
def ui(
    db: Annotated[
        str | None, typer.Option(help="Evidence store URL (else APEX_DB, else the default).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = DEFAULT_UI_PORT,
) -> None:
    """Serve the dashboard: goals with live state, cycles, runs, the evidence leaderboard."""
    import uvicorn

    from apex.ui import create_app

    app = create_app(db)
    console.print(f"APEX dashboard on http://{host}:{port}/ (read-only; Ctrl-C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
