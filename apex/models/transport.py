"""HTTP to providers over aiohttp, behind httpx's client API.

:class:`ModelClient` speaks httpx (requests, responses, streams, errors); this transport sends
its requests through an :class:`aiohttp.ClientSession` instead of httpcore. The wire is the
same; the cost is not: httpcore's pool does Python work for every idle connection on every
request (checking each for expiry and readability) and parses HTTP in Python, while aiohttp's
connector hands out a kept-alive connection in constant time and parses in C. With 192 calls
in flight (``benchmarks/serve.py``: 64 cycles at once), a cycle's CPU fell from about 20 ms to
15 ms.

Failures come back as httpx's exceptions, by what happened: a timeout as
:class:`httpx.TimeoutException`, a refused or unreachable host as :class:`httpx.ConnectError`,
anything else on the connection as :class:`httpx.ReadError`. Proxies and certificates follow
the environment as httpx's own transport does (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``,
``NO_PROXY``, ``SSL_CERT_FILE``).
"""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx

KEEPALIVE_S = 5.0
"""How long an idle connection is kept for the next request (httpx's default)."""
CHUNK_BYTES = 64 * 1024
"""Most bytes read from a response body at once."""


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except aiohttp.ConnectionTimeoutError as error:
        raise httpx.ConnectTimeout(str(error) or "timed out connecting") from error
    except (TimeoutError, aiohttp.ServerTimeoutError) as error:
        raise httpx.ReadTimeout(str(error) or "timed out reading") from error
    except aiohttp.ClientConnectorError as error:
        raise httpx.ConnectError(str(error)) from error
    except aiohttp.InvalidURL as error:
        raise httpx.UnsupportedProtocol(str(error)) from error
    except (aiohttp.ClientError, OSError) as error:
        raise httpx.ReadError(str(error) or type(error).__name__) from error


class _Body(httpx.AsyncByteStream):
    """An aiohttp response's body as httpx reads it; closing it frees the connection."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for chunk in self._response.content.iter_chunked(CHUNK_BYTES):
                yield chunk

    async def aclose(self) -> None:
        self._response.release()  # read to the end: kept alive; else the connection closes


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp session of at most ``connections`` connections
    (opened on the first request, in the running event loop)."""

    def __init__(self, connections: int) -> None:
        self.connections = connections
        """Most connections open at once (more requests wait for one)."""
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.connections,
                keepalive_timeout=KEEPALIVE_S,
                ssl=httpx.create_ssl_context(),
            )
            # trust_env=False: aiohttp would look up the proxy (and .netrc) in a worker thread
            # on every request, queueing each call behind the store's reads and writes
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    def _proxy(self, url: httpx.URL) -> str | None:
        """The proxy the environment names for ``url``'s scheme and host (looked up once)."""
        key = (url.scheme, url.host)
        if key not in self._proxies:
            named = urllib.request.getproxies()  # HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY
            proxy = named.get(url.scheme) or named.get("all")
            bypassed = proxy is not None and urllib.request.proxy_bypass(url.host)
            self._proxies[key] = None if bypassed else proxy
        return self._proxies[key]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; its response with the body still to read."""
        timeout = request.extensions.get("timeout", {})
        with _as_httpx_errors():
            response = await self._open().request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=request.content or None,
                allow_redirects=False,
                proxy=self._proxy(request.url),
                auto_decompress=False,  # httpx decodes by the response's Content-Encoding
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"), sock_read=timeout.get("read")
                ),
            )
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=_Body(response),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        """Close every connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None
