"""How ``apex serve`` is configured: one value object, its defaults, and the bearer keys.

The keys come from ``APEX_SERVER_KEYS`` (comma-separated). Each is registered with
:mod:`apex.redact` as soon as it is read, so it is masked wherever it might appear, and held as a
``SecretStr`` so no repr shows it.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from apex.redact import register_secret

SERVER_KEYS_ENV = "APEX_SERVER_KEYS"
"""Environment variable holding the server's bearer keys, comma-separated."""
DEFAULT_HOST = "127.0.0.1"
"""Loopback: the only host a server without keys may bind."""
DEFAULT_PORT = 8000
"""The port ``apex serve`` listens on unless told otherwise."""
DEFAULT_MAX_BODY_BYTES = 1_048_576
"""Largest request body accepted (1 MiB); larger ones get 413."""
DEFAULT_MAX_CONCURRENT = 64
"""Fusion cycles and pass-through calls in flight at once; the rest get 429."""
DEFAULT_DEADLINE_S = 300.0
"""A request's cycle (or pass-through call) is cancelled after this long, with 504."""
DEFAULT_KEEPALIVE_S = 10.0
"""Seconds between SSE comment keep-alives while a streamed answer is being worked on."""
DEFAULT_GRACE_S = 60.0
"""On SIGTERM, how long in-flight requests may take to finish before the server stops."""
RETRY_AFTER_S = 1
"""The ``Retry-After`` sent with 429 (overloaded) and 503 (shutting down)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface only (``localhost``, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def keys_from_env(environ: dict[str, str] | None = None) -> tuple[SecretStr, ...]:
    """The bearer keys in ``APEX_SERVER_KEYS`` (registered as secrets); empty when unset."""
    raw = (environ if environ is not None else os.environ).get(SERVER_KEYS_ENV, "")
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for key in keys:
        register_secret(key)
    return tuple(SecretStr(k) for k in keys)


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``apex serve`` needs; the CLI builds one from its flags."""

    host: str = DEFAULT_HOST
    """Interface to bind."""
    port: int = DEFAULT_PORT
    """Port to bind (0: any free port)."""
    db: str | None = None
    """Evidence store URL (else ``APEX_DB``, else ``$APEX_HOME/apex.db``)."""
    workflows_dir: Path | None = None
    """Every ``*.toml`` here is served as ``apex/<name>`` beside the shipped workflows."""
    keys: tuple[SecretStr, ...] = field(default_factory=tuple)
    """Bearer keys; empty means no authentication (loopback only unless ``insecure``)."""
    insecure: bool = False
    """Allow a non-loopback host without keys."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Request body limit."""
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    """Cap on cycles (and pass-through calls) in flight."""
    deadline_s: float = DEFAULT_DEADLINE_S
    """Per-request deadline of a cycle or pass-through call."""
    keepalive_s: float = DEFAULT_KEEPALIVE_S
    """SSE keep-alive interval (also how long a stream waits before committing to 200)."""
    grace_s: float = DEFAULT_GRACE_S
    """Graceful-shutdown budget for in-flight requests."""
    allow_command_verifiers: bool = False
    """Let ``POST /v1/goals`` give a shell-command verifier (it runs on this machine)."""
    resume_goals: bool = True
    """Resume the store's active goals at start."""

    def check(self) -> str | None:
        """Why this configuration must not start (None when it may)."""
        if not self.keys and not self.insecure and not is_loopback(self.host):
            return (
                f"--host {self.host} is not loopback and {SERVER_KEYS_ENV} is unset: anyone who "
                f"can reach it could spend your provider budget; set {SERVER_KEYS_ENV}, bind "
                "127.0.0.1, or pass --insecure"
            )
        if self.workflows_dir is not None and not self.workflows_dir.is_dir():
            return f"--workflows {self.workflows_dir}: not a directory"
        return None
