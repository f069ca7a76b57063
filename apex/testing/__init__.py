"""Test doubles shipped for users too: a scriptable OpenAI-compatible server on loopback."""

from apex.testing.server import (
    Empty,
    Fail,
    Hang,
    Malformed,
    RecordedRequest,
    Refuse,
    Reply,
    Responder,
    TestServer,
)
from apex.testing.workflows import workflow_toml

__all__ = [
    "Empty",
    "Fail",
    "Hang",
    "Malformed",
    "RecordedRequest",
    "Refuse",
    "Reply",
    "Responder",
    "TestServer",
    "workflow_toml",
]
