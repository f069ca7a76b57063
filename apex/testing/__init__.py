"""Test doubles shipped for users too: scriptable OpenAI-compatible models.

:class:`InProcessServer` (and its shorthand :class:`FunctionModel`) answers in the event loop
through an httpx transport, with no socket or thread: use it for graph and goal tests.
:class:`TestServer` speaks real HTTP on loopback with the same scripting API: use it where the
wire matters (HTTP framing, subprocesses, servers outside Python).
"""

from apex.testing.behaviours import (
    Behaviour,
    Empty,
    Fail,
    Hang,
    Malformed,
    RecordedRequest,
    Refuse,
    Reply,
    Responder,
    ScriptedModels,
)
from apex.testing.inprocess import FunctionModel, InProcessServer, InProcessTransport
from apex.testing.server import TestServer
from apex.testing.workflows import workflow_toml

__all__ = [
    "Behaviour",
    "Empty",
    "Fail",
    "FunctionModel",
    "Hang",
    "InProcessServer",
    "InProcessTransport",
    "Malformed",
    "RecordedRequest",
    "Refuse",
    "Reply",
    "Responder",
    "ScriptedModels",
    "TestServer",
    "workflow_toml",
]
