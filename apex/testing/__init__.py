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
]
