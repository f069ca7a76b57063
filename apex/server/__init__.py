"""``apex serve``: an OpenAI-compatible endpoint and a goals API over the one async core.

``POST /v1/chat/completions`` with ``model: "apex/<workflow>"`` runs a fusion cycle
(:func:`apex.fusion.fuse`), with ``model: "provider:model"`` one call; goals run as tasks over
:func:`apex.goals.resume`. Nothing here reimplements the cycle: this package parses requests,
applies limits and writes responses.

    from apex.server import ServerConfig, create_app
    app = create_app(ServerConfig(workflows_dir=Path("workflows")))   # any ASGI server

FastAPI and uvicorn are imported only when the app or the server is asked for, so the CLI can
read this package's configuration without loading them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apex.server.config import ServerConfig, keys_from_env

if TYPE_CHECKING:
    from apex.server.app import build_state, create_app
    from apex.server.run import bind, serve

_LAZY = {"build_state": "app", "create_app": "app", "bind": "run", "serve": "run"}

__all__ = ["ServerConfig", "bind", "build_state", "create_app", "keys_from_env", "serve"]


def __getattr__(name: str) -> Any:
    """The app and server functions, imported on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'apex.server' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"apex.server.{_LAZY[name]}"), name)
