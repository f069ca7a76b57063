"""The aiohttp transport on the wire, against a raw HTTP server on loopback: connections kept
alive and bounded, compressed bodies decoded, and every way a connection fails typed as httpx
types it (so a call's failure kind is the same as over httpcore)."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from apex.models import ModelClient
from apex.models.retry import RetryPolicy
from apex.models.transport import AiohttpTransport
from apex.models.types import ChatRequest
from apex.workflow import Workflow, parse_workflow

ONCE = RetryPolicy(max_retries=0)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
ANSWER = {
    "choices": [{"message": {"role": "assistant", "content": "Paris"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
}


class RawServer:
    """An HTTP/1.1 server on a free loopback port whose every request ``handler`` answers by
    hand; counts the connections it accepted."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.port = 0
        self.request_lines: list[str] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while line := await _read_request(reader):
                self.request_lines.append(line)
                await self.handler(reader, writer)
                if writer.is_closing():
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    def workflow(self) -> Workflow:
        return parse_workflow(
            f"""
name = "raw"
[providers.raw]
base_url = "http://127.0.0.1:{self.port}/v1"
[[panel]]
model = "raw:m"
[judge]
model = "raw:judge"
""",
            "raw.toml",
        )


async def _read_request(reader: asyncio.StreamReader) -> str:
    """One request read whole; its request line."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return head[0]


def _response(body: bytes, *headers: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Content-Type: application/json", *headers]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(_response(json.dumps(ANSWER).encode()))
    await writer.drain()


async def _chat(server: RawServer, times: int = 1) -> list[str | None]:
    async with ModelClient(server.workflow().client_settings, retry=ONCE) as client:
        results = [await client.chat("raw:m", ChatRequest.of("q")) for _ in range(times)]
    return [r.text if r.ok else r.failure.kind if r.failure else None for r in results]


@pytest.fixture
async def answering() -> AsyncIterator[RawServer]:
    async with RawServer(_answer) as server:
        yield server


async def test_calls_share_one_kept_alive_connection(answering: RawServer) -> None:
    assert await _chat(answering, times=5) == ["Paris"] * 5
    assert answering.connections == 1


async def test_connections_are_bounded() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.1)
        await _answer(reader, writer)

    async with RawServer(slow) as server:
        async with httpx.AsyncClient(transport=AiohttpTransport(2)) as http:
            url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
            answers = await asyncio.gather(*(http.post(url, json={}) for _ in range(6)))
        assert [a.json()["choices"][0]["message"]["content"] for a in answers] == ["Paris"] * 6
        assert server.connections == 2


async def test_a_compressed_body_is_decoded() -> None:
    async def gzipped(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            _response(gzip.compress(json.dumps(ANSWER).encode()), "Content-Encoding: gzip")
        )
        await writer.drain()

    async with RawServer(gzipped) as server:
        assert await _chat(server) == ["Paris"]


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(b"", id="closed before answering"),
        pytest.param(b'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{"choi', id="body cut short"),
        pytest.param(b"NOT HTTP AT ALL\r\n\r\n", id="not HTTP"),
    ],
)
async def test_a_broken_connection_is_a_connection_failure(cut: bytes) -> None:
    async def breaks(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(cut)
        await writer.drain()
        writer.close()

    async with RawServer(breaks) as server:
        assert await _chat(server) == ["connection"]


async def test_a_refused_connection_is_a_connection_failure() -> None:
    async with RawServer(_answer) as server:
        pass  # closed: nothing listens on its port any more
    assert await _chat(server) == ["connection"]


async def test_a_silent_server_is_a_timeout() -> None:
    async def silent(_reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async with (
        RawServer(silent) as server,
        httpx.AsyncClient(transport=AiohttpTransport(1)) as http,
    ):
        url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
        with pytest.raises(httpx.ReadTimeout):
            await http.post(url, json={}, timeout=0.3)


@pytest.mark.parametrize(
    ("variable", "bypassed"),
    [("HTTP_PROXY", False), ("ALL_PROXY", False), ("HTTP_PROXY", True)],
)
async def test_the_environment_names_the_proxy(
    answering: RawServer, monkeypatch: pytest.MonkeyPatch, variable: str, bypassed: bool
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with RawServer(_answer) as proxy:
        monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1" if bypassed else "elsewhere.invalid")
        url = f"http://127.0.0.1:{answering.port}/v1/chat/completions"
        async with httpx.AsyncClient(transport=AiohttpTransport(1)) as http:
            assert (await http.post(url, json={})).json() == ANSWER
    if bypassed:
        assert (proxy.request_lines, answering.request_lines) == (
            [],
            ["POST /v1/chat/completions HTTP/1.1"],
        )
    else:
        assert (proxy.request_lines, answering.request_lines) == ([f"POST {url} HTTP/1.1"], [])
