"""The door every request passes: shutdown (503), bearer keys (401), body limit (413).

A pure ASGI middleware (it never buffers a response, so streams and disconnects pass through).
``/v1/*`` needs a key when keys are configured; ``/health``, ``/docs`` and the OpenAPI schema do
not. Keys are compared in constant time (SHA-256 digests, every key compared). Requests in
flight are counted, so a graceful shutdown knows when the last one has finished; long-lived goal
event streams are not counted (they are closed at shutdown instead).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Sequence

from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apex.server.config import RETRY_AFTER_S
from apex.server.errors import error_bytes

PROTECTED_PREFIX = "/v1/"
"""Paths that need a bearer key (when keys are configured)."""


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


class Door:
    """The state the middleware keeps: keys, limits, in-flight count, draining flag."""

    def __init__(self, keys: Sequence[SecretStr], max_body_bytes: int) -> None:
        self._keys = [_digest(k.get_secret_value()) for k in keys]
        self.max_body_bytes = max_body_bytes
        """Largest body accepted."""
        self.in_flight = 0
        """Counted requests being served now."""
        self.draining = False
        """True once shutdown began: new requests get 503."""
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def auth(self) -> bool:
        """Whether keys are required."""
        return bool(self._keys)

    def authorized(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries one of the keys (constant time)."""
        scheme, _, token = (header or "").partition(" ")
        given = _digest(token.strip() if scheme.lower() == "bearer" else "")
        found = False
        for key in self._keys:  # every key is compared, whichever matches
            found |= hmac.compare_digest(given, key)
        return found

    def enter(self) -> None:
        """One more request in flight."""
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        """One request finished."""
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no counted request is in flight; False if ``timeout_s`` passed first."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


async def _refuse(send: Send, status: int, message: str, code: str, **headers: str) -> None:
    body = error_bytes(status, message, code)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class GuardMiddleware:
    """Shutdown, auth and body-limit checks in front of the app (see the module docstring)."""

    def __init__(self, app: ASGIApp, door: Door) -> None:
        self.app = app
        self.door = door

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        protected = path.startswith(PROTECTED_PREFIX)
        door = self.door
        if door.draining and (protected or path == "/health"):
            await _refuse(
                send,
                503,
                "the server is shutting down; retry on another instance",
                "shutting_down",
                retry_after=str(RETRY_AFTER_S),
            )
            return
        if protected and door.auth and not door.authorized(_header(scope, b"authorization")):
            await _refuse(
                send,
                401,
                "missing or invalid bearer key (Authorization: Bearer KEY)",
                "invalid_api_key",
                www_authenticate="Bearer",
            )
            return
        replay = await self._limited_body(scope, receive, send)
        if replay is None:
            return
        counted = protected and not path.endswith("/events")
        if counted:
            door.enter()
        try:
            await self.app(scope, replay, send)
        finally:
            if counted:
                door.leave()

    async def _limited_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Read the whole body (refusing it past the limit); a receive that replays it."""
        limit = self.door.max_body_bytes
        declared = _header(scope, b"content-length")
        too_large = f"the request body exceeds {limit} bytes"
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, 413, too_large, "body_too_large")
            return None
        if scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            return receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left before sending it all
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(send, 413, too_large, "body_too_large")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return replay
